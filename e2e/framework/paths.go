package framework

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const (
	// modulePath identifies braid's go.mod among the ones above the working
	// directory (the tools modules under hack/ have their own).
	modulePath = "github.com/braid-cni/braid"

	// apiserverEnv, controllerManagerEnv and schedulerEnv override the
	// default paths of the control plane binaries.
	apiserverEnv         = "BRAID_KUBE_APISERVER"
	controllerManagerEnv = "BRAID_KUBE_CONTROLLER_MANAGER"
	schedulerEnv         = "BRAID_KUBE_SCHEDULER"

	defaultEtcdPath = "/usr/bin/etcd"
)

// RepoRoot returns the directory of braid's go.mod, found by walking up from
// the working directory. Go tests run in their package's directory, so this
// works from any package in the module.
func RepoRoot() (string, error) {
	start, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && moduleName(data) == modulePath {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find repo root: no go.mod of module %s above %s", modulePath, start)
		}
	}
}

// moduleName returns the module path declared in a go.mod file.
func moduleName(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], "\"`")
		}
	}
	return ""
}

// Options configures StartControlPlane. The zero value is usable.
type Options struct {
	// WorkDir holds etcd's data, the certificates, keys, token file and the
	// process logs (etcd.log, apiserver.log). When empty, a temporary
	// directory is created and removed again by Stop.
	WorkDir string
	// APIServerPath defaults to $BRAID_KUBE_APISERVER, then to
	// bin/kube-apiserver in the repository root (see `make tools`).
	APIServerPath string
	// EtcdPath defaults to /usr/bin/etcd.
	EtcdPath string
	// Controllers also starts kube-controller-manager and kube-scheduler and
	// enables the ServiceAccount admission plugin: what a node (StartNode)
	// needs to run pods. Without it no controller runs, pods are plain API
	// objects and service accounts must be created by hand.
	Controllers bool
	// ControllerManagerPath and SchedulerPath are used with Controllers. They
	// default to $BRAID_KUBE_CONTROLLER_MANAGER and $BRAID_KUBE_SCHEDULER, then
	// to bin/kube-controller-manager and bin/kube-scheduler in the repository
	// root.
	ControllerManagerPath string
	SchedulerPath         string
	// Detach starts the processes so that they outlive this Go process (see
	// NodeOptions.Detach); a second process stops them with
	// AttachControlPlane and Stop.
	Detach bool
	// AuditLog, when set, is where kube-apiserver writes its audit log: one
	// JSON line per request at level Metadata (who, verb, object, response
	// code), written before the response (see audit.go). The policy goes
	// into WorkDir. Off by default.
	AuditLog string
	// Log receives the framework's own progress messages; nil discards them.
	Log io.Writer
}

// Resolve fills in the defaults of o and checks that the binaries exist. The
// error names every missing binary.
func (o Options) Resolve() (Options, error) {
	var err error
	if o.APIServerPath, err = binaryPath(o.APIServerPath, apiserverEnv, "kube-apiserver"); err != nil {
		return o, err
	}
	if o.EtcdPath == "" {
		o.EtcdPath = defaultEtcdPath
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	errs := []error{checkExecutable("kube-apiserver", o.APIServerPath), checkExecutable("etcd", o.EtcdPath)}
	if o.Controllers {
		if o.ControllerManagerPath, err = binaryPath(o.ControllerManagerPath, controllerManagerEnv, "kube-controller-manager"); err != nil {
			return o, err
		}
		if o.SchedulerPath, err = binaryPath(o.SchedulerPath, schedulerEnv, "kube-scheduler"); err != nil {
			return o, err
		}
		errs = append(errs, checkExecutable("kube-controller-manager", o.ControllerManagerPath),
			checkExecutable("kube-scheduler", o.SchedulerPath))
	}
	return o, errors.Join(errs...)
}

// binaryPath returns path if set, else the environment variable env, else
// bin/<name> in the repository root (where `make tools` links it).
func binaryPath(path, env, name string) (string, error) {
	if path == "" {
		path = os.Getenv(env)
	}
	if path != "" {
		return path, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", name), nil
}

func checkExecutable(name, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s binary: %w", name, err)
	}
	if info.IsDir() || info.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s binary %s is not executable", name, path)
	}
	return nil
}
