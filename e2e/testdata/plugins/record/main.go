// Command record is a test CNI plugin that records every call: it appends
// one JSON line per verb to the file named by the config key "recordFile",
// with the CNI environment and the config exactly as received, so a test
// can assert what a delegate gets (deviceID, pciBusID, runtimeConfig...).
// ADD returns one interface, CNI_IFNAME in CNI_NETNS, with the config's
// "ip" (a CIDR) on it if set, or an unchanged prevResult when chained; it
// never touches the netns. With "waitFor" set, ADD (once recorded) waits
// until that file exists, for at most a minute: a slow delegate.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// netConf is the plugin's configuration.
type netConf struct {
	types.NetConf
	RecordFile string `json:"recordFile"`
	IP         string `json:"ip,omitempty"`
	WaitFor    string `json:"waitFor,omitempty"`
}

// Call is one recorded line.
type Call struct {
	Command     string          `json:"command"`
	ContainerID string          `json:"containerID"`
	Netns       string          `json:"netns"`
	IfName      string          `json:"ifName"`
	Args        string          `json:"args"`
	Path        string          `json:"path"`
	Config      json.RawMessage `json:"config"`
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    cmdAdd,
		Del:    func(args *skel.CmdArgs) error { _, err := record("DEL", args); return err },
		Check:  func(args *skel.CmdArgs) error { _, err := record("CHECK", args); return err },
		Status: func(args *skel.CmdArgs) error { _, err := record("STATUS", args); return err },
		GC:     func(args *skel.CmdArgs) error { _, err := record("GC", args); return err },
	}, version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"), "record test plugin")
}

// record parses the config and appends the call to its recordFile.
func record(command string, args *skel.CmdArgs) (*netConf, error) {
	conf := &netConf{}
	if err := json.Unmarshal(args.StdinData, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "record: parse config", err.Error())
	}
	if conf.RecordFile == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, `record: config key "recordFile" is required`, "")
	}
	line, err := json.Marshal(Call{
		Command: command, ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName,
		Args: args.Args, Path: args.Path, Config: args.StdinData,
	})
	if err != nil {
		return nil, fmt.Errorf("record: encode %s call: %w", command, err)
	}
	f, err := os.OpenFile(conf.RecordFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("record: open %s: %w", conf.RecordFile, err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("record: append to %s: %w", conf.RecordFile, err)
	}
	return conf, f.Close()
}

func cmdAdd(args *skel.CmdArgs) error {
	conf, err := record("ADD", args)
	if err != nil {
		return err
	}
	if conf.WaitFor != "" {
		if err := waitFor(conf.WaitFor, time.Minute); err != nil {
			return err
		}
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "record: parse prevResult", err.Error())
	}
	if conf.PrevResult != nil {
		return types.PrintResult(conf.PrevResult, conf.CNIVersion)
	}
	result := &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{{Name: args.IfName, Sandbox: args.Netns}},
	}
	if conf.IP != "" {
		ip, ipnet, err := net.ParseCIDR(conf.IP)
		if err != nil {
			return types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("record: ip %q", conf.IP), err.Error())
		}
		ipnet.IP = ip
		result.IPs = []*current.IPConfig{{Interface: current.Int(0), Address: *ipnet}}
	}
	return types.PrintResult(result, conf.CNIVersion)
}

// waitFor waits until path exists.
func waitFor(path string, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("record: %s did not appear within %s", path, limit), "")
}
