package nad

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/braid-cni/braid/netconf"
)

// Getter reads one NetworkAttachmentDefinition.
type Getter interface {
	GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
}

// Resolver turns network names into delegate config bytes.
type Resolver struct {
	NADs    Getter // nil: no API access (no kubeconfig)
	ConfDir string // where NADs with an empty spec and cluster network names are looked up
}

// Network is a resolved network: its name as braid reports it and the
// delegate config bytes.
type Network struct {
	Name   string // "namespace/name" for a NAD, the config's name otherwise
	Config []byte
	NAD    *nadv1.NetworkAttachmentDefinition // nil when the network came from a file
}

// NAD resolves namespace/name. A missing NAD or an unreachable API server is
// CNI error 11 (try again later: the kubelet retries, and the NAD may be
// created meanwhile); a config that does not parse is error 7.
func (r *Resolver) NAD(ctx context.Context, namespace, name string) (*Network, error) {
	id := namespace + "/" + name
	if r.NADs == nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("network %s: no API access to read NetworkAttachmentDefinitions (kubeconfig not set)", id), "")
	}
	obj, err := r.NADs.GetNAD(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("network-attachment-definition %s not found", id), "")
	}
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("get network-attachment-definition %s: %v", id, err), "")
	}
	conf, err := r.nadConfig(obj)
	if err != nil {
		return nil, err
	}
	return &Network{Name: id, Config: conf, NAD: obj}, nil
}

// nadConfig is the delegate config of obj: its spec.config, or, when that
// is empty, the config named like the NAD in confDir.
func (r *Resolver) nadConfig(obj *nadv1.NetworkAttachmentDefinition) ([]byte, error) {
	id := obj.Namespace + "/" + obj.Name
	conf, err := Config(obj.Name, obj.Spec.Config)
	if err != nil {
		return nil, rebuild(err, "network-attachment-definition "+id)
	}
	if conf != nil {
		return conf, nil
	}
	conf, err = nadutils.GetCNIConfigFromFile(obj.Name, r.ConfDir)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("network-attachment-definition %s has no spec.config and no config named %q was found in %s", id, obj.Name, r.ConfDir), err.Error())
	}
	return conf, nil
}

// ClusterNetwork resolves the clusterNetwork key, and defaultNetworks
// entries: an absolute path to a config file or a directory (first config
// wins), else a NAD in namespace, else the config named ref in confDir.
func (r *Resolver) ClusterNetwork(ctx context.Context, namespace, ref string) (*Network, error) {
	if filepath.IsAbs(ref) {
		return fromPath(ref)
	}
	if r.NADs != nil {
		obj, err := r.NADs.GetNAD(ctx, namespace, ref)
		switch {
		case err == nil:
			conf, err := r.nadConfig(obj)
			if err != nil {
				return nil, err
			}
			return &Network{Name: namespace + "/" + ref, Config: conf, NAD: obj}, nil
		case !apierrors.IsNotFound(err):
			// Falling back to a file while the API server does not answer
			// could pick a different network than the operator meant.
			return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("get cluster network network-attachment-definition %s/%s: %v", namespace, ref, err), "")
		}
	}
	conf, err := nadutils.GetCNIConfigFromFile(ref, r.ConfDir)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("cluster network %q: no NetworkAttachmentDefinition %s/%s and no config of that name in %s", ref, namespace, ref, r.ConfDir), err.Error())
	}
	return named(conf, "cluster network "+ref)
}

func fromPath(path string) (*Network, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("cluster network %s", path), err.Error())
	}
	if info.IsDir() {
		return fromDir(path)
	}
	conf, err := os.ReadFile(path)
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("read cluster network %s", path), err.Error())
	}
	return named(conf, "cluster network "+path)
}

// fromDir picks the alphabetically first config in dir that is not braid's
// own: braid usually lives in the same directory as the network it wraps,
// and must never pick itself for eth0.
func fromDir(dir string) (*Network, error) {
	files, err := libcni.ConfFiles(dir, netconf.ConfigExtensions())
	if err != nil {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("read cluster network directory %s", dir), err.Error())
	}
	for _, f := range files {
		conf, err := os.ReadFile(f)
		if err != nil || isBraid(conf) {
			continue
		}
		return named(conf, "cluster network "+f)
	}
	return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("cluster network directory %s holds no CNI config but braid's", dir), "")
}

// isBraid reports whether a config runs braid itself.
func isBraid(conf []byte) bool {
	var doc struct {
		Type    string `json:"type"`
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if json.Unmarshal(conf, &doc) != nil {
		return false
	}
	if netconf.IsBraid(doc.Type) {
		return true
	}
	for _, p := range doc.Plugins {
		if netconf.IsBraid(p.Type) {
			return true
		}
	}
	return false
}

// named reads the config's name, which is how the cluster network is reported.
func named(conf []byte, what string) (*Network, error) {
	list, err := libcni.NetworkConfFromBytes(conf)
	if err != nil || list.Name == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, what+": not a CNI config with a name", fmt.Sprint(err))
	}
	return &Network{Name: list.Name, Config: conf}, nil
}

// Inline takes a config given inline (the legacy "delegates" key).
func Inline(conf []byte) (*Network, error) {
	return named(conf, "inline delegate")
}
