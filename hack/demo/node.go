package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
)

const (
	// macvlanMaster stands in for the host NIC named in
	// examples/nad-macvlan.yaml; macvlanPeer is the other end of its veth.
	macvlanMaster = "braid-demo0"
	macvlanPeer   = "braid-demo1"
	clusterBridge = "braid-cni0"
)

// bridges are the host bridges of the cluster network and the example NADs.
func bridges() []string {
	return []string{clusterBridge, "br-blue", "br-green"}
}

// layOutNode writes the cluster network and braid's config into the
// temporary directory, prepares the runtime's libcni and adds the veth pair
// that serves as macvlan master.
func (d *demo) layOutNode(context.Context) error {
	for _, sub := range []string{"net.d", "multus.d", "leases"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return fmt.Errorf("lay out node: %w", err)
		}
	}
	clusterPath := filepath.Join(d.dir, "net.d", "10-cluster.conflist")
	conf, err := d.braidConfig(clusterPath)
	if err != nil {
		return err
	}
	cluster, _ := json.MarshalIndent(d.clusterNetwork(), "", "  ") // maps of strings always encode
	if err := os.WriteFile(clusterPath, cluster, 0o644); err != nil {
		return fmt.Errorf("write cluster network: %w", err)
	}
	runtimeList, _ := json.Marshal(map[string]any{"cniVersion": conf["cniVersion"], "name": conf["name"], "plugins": []any{conf}})
	if d.list, err = libcni.NetworkConfFromBytes(runtimeList); err != nil {
		return fmt.Errorf("load runtime conflist: %w", err)
	}
	d.cni = libcni.NewCNIConfigWithCacheDir([]string{filepath.Join(d.root, "bin")}, filepath.Join(d.dir, "runtime-cache"), nil)
	shown, _ := json.MarshalIndent(conf, "", "  ")
	fmt.Fprintf(d.out, "\nnode: cluster network in %s (bridge %s, 10.244.0.0/24); braid's config:\n%s\n", clusterPath, clusterBridge, shown)
	d.onCleanup("delete bridges", func(context.Context) error { return deleteLinks(bridges()) })
	if err := addVeth(); err != nil {
		return err
	}
	d.onCleanup("delete veth", func(context.Context) error { return deleteLinks([]string{macvlanMaster}) })
	return nil
}

// clusterNetwork is the node's primary network, attached as eth0: a bridge
// that is the pod's gateway, host-local leases in the temporary directory.
func (d *demo) clusterNetwork() map[string]any {
	ipam := map[string]any{
		"type":    "host-local",
		"dataDir": filepath.Join(d.dir, "leases"),
		"ranges":  []any{[]any{map[string]any{"subnet": "10.244.0.0/24"}}},
		"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
	}
	bridge := map[string]any{"type": "bridge", "bridge": clusterBridge, "isGateway": true, "ipam": ipam}
	return map[string]any{"cniVersion": "1.0.0", "name": "cluster", "plugins": []any{bridge}}
}

// braidConfig is examples/braid.conf with its paths moved into the
// temporary directory and bin/plugins.
func (d *demo) braidConfig(clusterPath string) (map[string]any, error) {
	path := filepath.Join(d.root, "examples", "braid.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read braid config: %w", err)
	}
	var conf map[string]any
	if err := json.Unmarshal(data, &conf); err != nil {
		return nil, fmt.Errorf("decode braid config %s: %w", path, err)
	}
	conf["kubeconfig"] = d.kubeconfig()
	conf["confDir"] = filepath.Join(d.dir, "multus.d")
	conf["cniDir"] = filepath.Join(d.dir, "braid")
	conf["clusterNetwork"] = clusterPath
	conf["binDir"] = filepath.Join(d.root, "bin", "plugins")
	conf["logFile"] = filepath.Join(d.dir, "braid.log")
	return conf, nil
}

// addVeth creates the macvlan master. preflight refused a leftover one:
// adopting it, the cleanup would delete a link the demo did not make.
func addVeth() error {
	la := netlink.NewLinkAttrs()
	la.Name = macvlanMaster
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: macvlanPeer}); err != nil {
		return fmt.Errorf("create veth %s: %w", macvlanMaster, err)
	}
	for _, name := range []string{macvlanMaster, macvlanPeer} {
		link, err := netlink.LinkByName(name)
		if err == nil {
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	return nil
}

// deleteLinks deletes host links; a veth's peer goes with it. A missing
// link is fine: the run may have stopped before a plugin created it.
func deleteLinks(names []string) error {
	var errs []error
	for _, name := range names {
		link, err := netlink.LinkByName(name)
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			continue
		}
		if err == nil {
			err = netlink.LinkDel(link)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete link %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
