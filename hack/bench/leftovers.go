package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// leftovers lists what the DELs of mode's sandboxes should have removed
// and did not, one description each: files in braid's cniDir (journal
// entries, cached delegate results), Multus's cniDir (cached delegates
// and results), noop's delegate cache and the runtime's libcni cache,
// host-local leases held by a container whose ID starts with idPrefix,
// and ports on the bridges of the cluster network and the first nads NADs.
func (e *env) leftovers(mode, idPrefix string, nads int) ([]string, error) {
	var out []string
	// The layouts of newBraid, newMultus and newNoop; a mode has only its
	// own of the first three.
	for _, dir := range []string{"braid", "cni", "delegate-cache", "runtime-cache"} {
		files, err := filesUnder(filepath.Join(e.work, mode, dir))
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	networks, bridges := []string{"cluster"}, []string{clusterBridge}
	for i := 1; i <= nads; i++ {
		networks, bridges = append(networks, nadName(i)), append(bridges, nadBridge(i))
	}
	for _, network := range networks {
		leases, err := leasesHeld(filepath.Join(e.dataDir, network), idPrefix)
		if err != nil {
			return nil, err
		}
		out = append(out, leases...)
	}
	for _, bridge := range bridges {
		ports, err := bridgePorts(bridge)
		if err != nil {
			return nil, err
		}
		out = append(out, ports...)
	}
	return out, nil
}

// filesUnder lists the files below dir; a missing dir has none.
func filesUnder(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) && path == dir {
			return filepath.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, "file "+path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	return files, nil
}

// leasesHeld lists host-local's lease files in dir (one per IP, holding the
// container ID) whose container ID starts with prefix.
func leasesHeld(dir, prefix string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list leases in %s: %w", dir, err)
	}
	var held []string
	for _, e := range entries {
		if e.IsDir() || e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read lease %s: %w", path, err)
		}
		if strings.HasPrefix(string(data), prefix) {
			held = append(held, fmt.Sprintf("lease %s held by %s", path, strings.Fields(string(data))[0]))
		}
	}
	return held, nil
}

// bridgePorts lists the links enslaved to bridge: the host ends of veths.
func bridgePorts(bridge string) ([]string, error) {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return nil, fmt.Errorf("find bridge %s: %w", bridge, err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, fmt.Sprintf("port %s on bridge %s", l.Attrs().Name, bridge))
		}
	}
	return ports, nil
}
