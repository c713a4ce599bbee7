package doctor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJudgeNetNS(t *testing.T) {
	dir := t.TempDir()
	netnsDir := filepath.Join(dir, "netns")
	notNS := filepath.Join(netnsDir, "cni-unmounted")
	writeFile(t, notNS, "")
	missingDir := filepath.Join(dir, "not-mounted-here", "cni-1")
	// A PID above the kernel's limit (2^22) is never a process.
	noProcess := "/proc/4194305/ns/net"
	viewErr := errors.New("not in the mount namespace of the node's init")
	tests := []struct {
		name    string
		path    string
		view    error
		want    verdict
		wantWhy string // in the error of an unseen verdict
	}{
		{name: "no path", path: "", want: live},
		{name: "live", path: "/proc/self/ns/net", want: live},
		{name: "live, seen from elsewhere", path: "/proc/self/ns/net", view: viewErr, want: live},
		{name: "file gone from its directory", path: filepath.Join(netnsDir, "cni-gone"), want: gone},
		{name: "file left, netns unmounted", path: notNS, want: gone},
		{name: "process gone", path: noProcess, want: gone},
		{name: "directory not here", path: missingDir, want: unseen, wantWhy: "no directory " + filepath.Dir(missingDir) + " here"},
		{name: "file gone, seen from elsewhere", path: filepath.Join(netnsDir, "cni-gone"), view: viewErr, want: unseen, wantWhy: viewErr.Error()},
		// In a mount namespace the runtime's mounts do not reach, a
		// live pod's netns is an empty file.
		{name: "file not a netns, seen from elsewhere", path: notNS, view: viewErr, want: unseen, wantWhy: viewErr.Error()},
		{name: "process gone, seen from another PID namespace", path: noProcess, view: viewErr, want: unseen, wantWhy: viewErr.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := judgeNetNS(tt.path, tt.view)
			if got != tt.want {
				t.Fatalf("judgeNetNS(%q) = %d (%v), want %d", tt.path, got, why, tt.want)
			}
			if tt.want != unseen {
				if why != nil {
					t.Errorf("judgeNetNS(%q) error %v, want none", tt.path, why)
				}
				return
			}
			if why == nil || !strings.Contains(why.Error(), "cannot see netns "+tt.path) || !strings.Contains(why.Error(), tt.wantWhy) {
				t.Errorf("judgeNetNS(%q) error %v, want one naming the path and %q", tt.path, why, tt.wantWhy)
			}
		})
	}
}

// fakeProc writes a procfs with this process's PID namespace link and the
// mount lists of this process and of init.
func fakeProc(t *testing.T, pidNS, selfMounts, initMounts string) string {
	t.Helper()
	root := t.TempDir()
	if pidNS != "" {
		if err := os.MkdirAll(filepath.Join(root, "self", "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(pidNS, filepath.Join(root, "self", "ns", "pid")); err != nil {
			t.Fatal(err)
		}
	}
	if selfMounts != "" {
		writeFile(t, filepath.Join(root, "self", "mountinfo"), selfMounts)
	}
	if initMounts != "" {
		writeFile(t, filepath.Join(root, "1", "mountinfo"), initMounts)
	}
	return root
}

func TestHostView(t *testing.T) {
	const hostMounts = "21 26 0:20 / /proc rw,relatime - proc proc rw\n" +
		"26 1 254:1 / / rw,relatime - ext4 /dev/vda rw\n" +
		"30 26 0:25 / /run rw - tmpfs tmpfs rw\n"
	// A container's copies of the same mounts get new IDs.
	const containerMounts = "612 580 0:20 / /proc rw,relatime - proc proc rw\n" +
		"580 471 0:90 / / rw,relatime - overlay overlay rw\n" +
		"615 580 0:25 / /run rw - tmpfs tmpfs rw\n"
	tests := []struct {
		name              string
		pidNS, self, init string
		wantErr           string // "": the host's view
	}{
		{name: "host", pidNS: initialPIDNS, self: hostMounts, init: hostMounts},
		{name: "own PID namespace", pidNS: "pid:[4026532201]", self: hostMounts, init: hostMounts, wantErr: "not in the node's PID namespace"},
		{name: "own mount namespace (hostPID container, unshare -m)", pidNS: initialPIDNS, self: containerMounts, init: hostMounts, wantErr: "not in the mount namespace of the node's init"},
		{name: "PID namespace unknown", self: hostMounts, init: hostMounts, wantErr: "cannot tell this process's PID namespace"},
		{name: "init's mounts unreadable", pidNS: initialPIDNS, self: hostMounts, wantErr: "cannot read the mounts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := hostView(fakeProc(t, tt.pidNS, tt.self, tt.init))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("hostView: %v, want the host's view", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("hostView: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
