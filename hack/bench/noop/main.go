// Command braid-noop is the bench's do-nothing meta-plugin: exec'd by the
// runtime as the node's only network, it execs the delegates its own config
// lists through libcni, the first on eth0 and delegate i on net<i> (DEL in
// reverse), and prints the first one's result. No API server, no journal,
// no status: what any exec'd meta-plugin costs at the least.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	cniversion "github.com/containernetworking/cni/pkg/version"
)

// timeout bounds one verb, all delegates together.
const timeout = time.Minute

// netConf is braid-noop's config: the delegates' conflists or confs, where
// their binaries are, and libcni's cache for their results.
type netConf struct {
	types.NetConf
	BinDir    string            `json:"binDir"`
	CacheDir  string            `json:"cacheDir"`
	Delegates []json.RawMessage `json:"delegates"`
}

// call is one verb's setting: the config and the runtime's arguments.
type call struct {
	conf  netConf
	cni   *libcni.CNIConfig
	lists []*libcni.NetworkConfigList
	args  *skel.CmdArgs
}

func load(args *skel.CmdArgs) (*call, error) {
	c := &call{args: args}
	if err := json.Unmarshal(args.StdinData, &c.conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "braid-noop: parse config", err.Error())
	}
	if len(c.conf.Delegates) == 0 || c.conf.BinDir == "" || c.conf.CacheDir == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "braid-noop: config needs delegates, binDir and cacheDir", "")
	}
	for i, raw := range c.conf.Delegates {
		list, err := confList(raw)
		if err != nil {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("braid-noop: delegate %d", i), err.Error())
		}
		c.lists = append(c.lists, list)
	}
	c.cni = libcni.NewCNIConfigWithCacheDir([]string{c.conf.BinDir}, c.conf.CacheDir, nil)
	return c, nil
}

// confList reads a conflist, or a single plugin's conf as a list of one.
func confList(raw []byte) (*libcni.NetworkConfigList, error) {
	var probe struct {
		Plugins json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	if probe.Plugins != nil {
		return libcni.ConfListFromBytes(raw)
	}
	conf, err := libcni.NetworkPluginConfFromBytes(raw)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}

// rt is delegate i's runtime config: the runtime's own, on eth0 or net<i>.
func (c *call) rt(i int) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: c.args.ContainerID, NetNS: c.args.Netns, IfName: c.args.IfName}
	if i > 0 {
		rt.IfName = fmt.Sprintf("net%d", i)
	}
	for _, kv := range strings.Split(c.args.Args, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			rt.Args = append(rt.Args, [2]string{k, v})
		}
	}
	return rt
}

// add adds every delegate in order and prints the first's result; on a
// failure it deletes the ones added, in reverse.
func add(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var first types.Result
	for i, list := range c.lists {
		res, err := c.cni.AddNetworkList(ctx, list, c.rt(i))
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				_ = c.cni.DelNetworkList(ctx, c.lists[j], c.rt(j))
			}
			return fmt.Errorf("ADD %s: %w", list.Name, err)
		}
		if i == 0 {
			first = res
		}
	}
	return types.PrintResult(first, c.conf.CNIVersion)
}

// del deletes every delegate in reverse, each even when one before failed.
func del(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for i := len(c.lists) - 1; i >= 0; i-- {
		if err := c.cni.DelNetworkList(ctx, c.lists[i], c.rt(i)); err != nil {
			errs = append(errs, fmt.Errorf("DEL %s: %w", c.lists[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// check checks every delegate in order.
func check(args *skel.CmdArgs) error {
	c, err := load(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for i, list := range c.lists {
		if err := c.cni.CheckNetworkList(ctx, list, c.rt(i)); err != nil {
			return fmt.Errorf("CHECK %s: %w", list.Name, err)
		}
	}
	return nil
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: add, Del: del, Check: check}, cniversion.All, "braid-noop: the bench's do-nothing meta-plugin")
}
