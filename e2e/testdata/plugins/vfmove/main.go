// Command vfmove is a test CNI plugin that does for a host interface what
// SR-IOV CNI does for a VF: ADD moves the host link named by the device ID
// into the container's netns under CNI_IFNAME (and configures the IPAM
// result on it), DEL moves it back under its device name. The device ID
// comes from runtimeConfig.deviceID (the deviceID capability) or else from
// the top-level "deviceID" key, as SR-IOV CNI reads it. The e2e tests use
// host veth ends named by their IDs as the devices.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// timeout bounds one verb, IPAM included.
const timeout = 30 * time.Second

// netConf is the plugin's configuration.
type netConf struct {
	types.NetConf
	// DeviceID is what braid (or Multus) injects for a device-backed
	// network.
	DeviceID      string `json:"deviceID,omitempty"`
	RuntimeConfig struct {
		DeviceID string `json:"deviceID,omitempty"`
		// CNIDeviceInfoFile is ignored on purpose: the plugin writes no
		// device-info, so the caller falls back to the device plugin's.
		CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
	} `json:"runtimeConfig,omitempty"`
}

func main() {
	// The plugin enters namespaces in-process: keep the main goroutine on
	// the thread it started on, in the host netns.
	runtime.LockOSThread()
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: ok, GC: ok},
		version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"), "vfmove test plugin")
}

func ok(*skel.CmdArgs) error { return nil }

// loadConf parses the config and returns it with the device ID to use.
func loadConf(data []byte) (*netConf, string, error) {
	conf := &netConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, "", types.NewError(types.ErrDecodingFailure, "vfmove: parse config", err.Error())
	}
	dev := conf.RuntimeConfig.DeviceID
	if dev == "" {
		dev = conf.DeviceID
	}
	if dev == "" {
		return nil, "", types.NewError(types.ErrInvalidNetworkConfig, "vfmove: no deviceID in runtimeConfig or config", "")
	}
	return conf, dev, nil
}

func cmdAdd(args *skel.CmdArgs) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conf, dev, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return fmt.Errorf("vfmove: host netns: %w", err)
	}
	defer hostNS.Close()
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("vfmove: open netns %s: %w", args.Netns, err)
	}
	defer netns.Close()

	if err := moveIn(dev, netns); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// Leave nothing behind: the device goes back to the host. It
			// is still named dev unless the rename succeeded; ifName may
			// be another link's name until then, so dev is looked up first.
			err = errors.Join(err, moveBack(netns, hostNS, dev, dev, args.IfName))
		}
	}()
	result, err := ipamAdd(ctx, conf, args.StdinData)
	if err != nil {
		return err
	}
	if conf.IPAM.Type != "" {
		defer func() {
			if err != nil {
				err = errors.Join(err, invoke.DelegateDel(ctx, conf.IPAM.Type, args.StdinData, nil))
			}
		}()
	}
	iface := &current.Interface{Name: args.IfName, Sandbox: args.Netns}
	result.Interfaces = []*current.Interface{iface}
	for _, ipc := range result.IPs {
		ipc.Interface = current.Int(0)
	}
	err = netns.Do(func(ns.NetNS) error {
		mac, err := configure(dev, args.IfName, result)
		iface.Mac = mac
		return err
	})
	if err != nil {
		return err
	}
	return types.PrintResult(result, conf.CNIVersion)
}

// moveIn sets the host link dev down and moves it into netns.
func moveIn(dev string, netns ns.NetNS) error {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("vfmove: device %s: %w", dev, err)
	}
	if err := netlink.LinkSetDown(link); err != nil {
		return fmt.Errorf("vfmove: set device %s down: %w", dev, err)
	}
	if err := netlink.LinkSetNsFd(link, int(netns.Fd())); err != nil {
		return fmt.Errorf("vfmove: move device %s to %s: %w", dev, netns.Path(), err)
	}
	return nil
}

// ipamAdd runs the IPAM plugin, if the config has one, and returns its
// result; without IPAM the result is empty.
func ipamAdd(ctx context.Context, conf *netConf, stdin []byte) (*current.Result, error) {
	if conf.IPAM.Type == "" {
		return &current.Result{CNIVersion: current.ImplementedSpecVersion}, nil
	}
	r, err := invoke.DelegateAdd(ctx, conf.IPAM.Type, stdin, nil)
	if err != nil {
		return nil, fmt.Errorf("vfmove: IPAM %s ADD: %w", conf.IPAM.Type, err)
	}
	result, err := current.NewResultFromResult(r)
	if err != nil {
		// Give the address back: the caller rolls back only what succeeded.
		return nil, errors.Join(fmt.Errorf("vfmove: IPAM %s result: %w", conf.IPAM.Type, err), invoke.DelegateDel(ctx, conf.IPAM.Type, stdin, nil))
	}
	return result, nil
}

// configure renames the device to ifName inside the netns, sets it up and
// adds the IPAM addresses and routes; it returns the MAC address.
func configure(dev, ifName string, result *current.Result) (string, error) {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return "", fmt.Errorf("vfmove: device %s in the netns: %w", dev, err)
	}
	if err := netlink.LinkSetName(link, ifName); err != nil {
		return "", fmt.Errorf("vfmove: rename device %s to %s: %w", dev, ifName, err)
	}
	for _, ipc := range result.IPs {
		addr := &netlink.Addr{IPNet: &ipc.Address}
		if ipc.Address.IP.To4() == nil {
			addr.Flags = unix.IFA_F_NODAD // usable at once, for routes via it
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return "", fmt.Errorf("vfmove: add address %s to %s: %w", ipc.Address.String(), ifName, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return "", fmt.Errorf("vfmove: set %s up: %w", ifName, err)
	}
	for _, r := range result.Routes {
		route := &netlink.Route{Dst: &r.Dst, LinkIndex: link.Attrs().Index, Gw: r.GW, Priority: r.Priority}
		if route.Gw == nil {
			route.Gw = gatewayFor(result.IPs, r.Dst.IP.To4() != nil)
		}
		if err := netlink.RouteAdd(route); err != nil {
			return "", fmt.Errorf("vfmove: add route %s via %s dev %s: %w", r.Dst.String(), route.Gw, ifName, err)
		}
	}
	return link.Attrs().HardwareAddr.String(), nil
}

// gatewayFor returns the first gateway of the family, as ipam.ConfigureIface
// picks it for routes without one.
func gatewayFor(ips []*current.IPConfig, v4 bool) net.IP {
	for _, ipc := range ips {
		if ipc.Gateway != nil && (ipc.Gateway.To4() != nil) == v4 {
			return ipc.Gateway
		}
	}
	return nil
}

// moveBack finds the device in netns under the first of names that
// exists, sets it down, names it dev again and moves it to hostNS. A device
// that is not there is no error: there is nothing to give back.
func moveBack(netns, hostNS ns.NetNS, dev string, names ...string) error {
	return netns.Do(func(ns.NetNS) error {
		var link netlink.Link
		for _, name := range names {
			l, err := netlink.LinkByName(name)
			if err == nil {
				link = l
				break
			}
			if !errors.As(err, &netlink.LinkNotFoundError{}) {
				return fmt.Errorf("vfmove: find %s in %s: %w", name, netns.Path(), err)
			}
		}
		if link == nil {
			return nil
		}
		name := link.Attrs().Name
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("vfmove: set %s down: %w", name, err)
		}
		if name != dev {
			if err := netlink.LinkSetName(link, dev); err != nil {
				return fmt.Errorf("vfmove: rename %s back to %s: %w", name, dev, err)
			}
		}
		if err := netlink.LinkSetNsFd(link, int(hostNS.Fd())); err != nil {
			return fmt.Errorf("vfmove: move device %s back to the host: %w", dev, err)
		}
		return nil
	})
}

func cmdDel(args *skel.CmdArgs) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conf, dev, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.IPAM.Type != "" {
		if err := invoke.DelegateDel(ctx, conf.IPAM.Type, args.StdinData, nil); err != nil {
			return fmt.Errorf("vfmove: IPAM %s DEL: %w", conf.IPAM.Type, err)
		}
	}
	if args.Netns == "" {
		return nil // the runtime no longer knows the netns: nothing to undo
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		if errors.As(err, new(ns.NSPathNotExistErr)) {
			return nil // the netns is gone, and the kernel released the device with it
		}
		return fmt.Errorf("vfmove: open netns %s: %w", args.Netns, err)
	}
	defer netns.Close()
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return fmt.Errorf("vfmove: host netns: %w", err)
	}
	defer hostNS.Close()
	// After a complete ADD the device is ifName; after an interrupted one
	// it may still be named dev.
	return moveBack(netns, hostNS, dev, args.IfName, dev)
}

func cmdCheck(args *skel.CmdArgs) error {
	if _, _, err := loadConf(args.StdinData); err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("vfmove: open netns %s: %w", args.Netns, err)
	}
	defer netns.Close()
	return netns.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName(args.IfName); err != nil {
			return fmt.Errorf("vfmove: %s in %s: %w", args.IfName, args.Netns, err)
		}
		return nil
	})
}
