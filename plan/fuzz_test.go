package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/plan"
)

// FuzzNADConfig feeds any NAD spec.config, and any cni-args and interface a
// pod may ask for, through what ADD does with them: resolve (the NAD
// client's spec helper), cni-args injection, delegate.Load and the braid
// check. It must never panic; a refusal is a CNI error with code 7 or 11;
// a plan it builds holds configs that are JSON objects, load as delegates
// and run no plugin of braid's own type.
func FuzzNADConfig(f *testing.F) {
	seeds := []struct{ config, cniArgs string }{
		{`{"cniVersion":"1.0.0","name":"blue","type":"bridge"}`, `{"k":"v"}`},
		{`{"cniVersion":"1.0.0","plugins":[{"type":"bridge","args":{"cni":{"a":1}}},{"type":"tuning"}]}`, `{"n":5}`},
		{`{"type":"braid","binDir":"/tmp/x"}`, `null`},
		{`{"plugins":[{"type":"bridge"},{"type":"braid-shim"}]}`, `{}`},
		{`{"type":"bridge","ipam":{"type":"braid"}}`, `{}`},
		{`{"type":"bridge","args":"x"}`, `{"k":1}`},
		{`{"plugins":"bridge"}`, `{}`},
		{`{"plugins":[null]}`, `{"k":null}`},
		{`null`, `{}`},
		{`[]`, `{}`},
		{`{"name":7,"type":"bridge"}`, `{}`},
		{`{"cniVersion":"1.0.0","type":"bridge","name":"a\u2028b","mtu":1e400}`, `{"x":[1e300]}`},
		{"", `{}`},
	}
	for _, s := range seeds {
		f.Add(s.config, s.cniArgs)
	}
	f.Fuzz(func(t *testing.T, config, cniArgs string) {
		sel := map[string]any{"name": "fuzz", "interface": "net1"}
		var args any
		if json.Unmarshal([]byte(cniArgs), &args) == nil {
			sel["cni-args"] = args
		}
		networks, err := json.Marshal([]any{sel})
		if err != nil {
			t.Skip("cni-args not encodable") // NaN-free JSON always is; keeps the property honest
		}
		nc, err := netconf.Parse([]byte(`{"cniVersion":"1.0.0","name":"braid","type":"braid","clusterNetwork":"cluster","confDir":"/nonexistent"}`))
		if err != nil {
			t.Fatal(err)
		}
		nads := mapNADs{
			"kube-system/cluster": newNAD("kube-system", "cluster", `{"cniVersion":"1.0.0","name":"cluster","type":"ptp"}`),
			"ns/fuzz":             newNAD("ns", "fuzz", config),
		}
		pods := &mapPods{pods: map[string]*corev1.Pod{"ns/p": newPod("ns", "p", "uid-1", map[string]string{annotations.NetworksKey: string(networks)})}}
		b := &plan.Builder{Conf: nc, Pods: pods, Resolver: &nad.Resolver{NADs: nads, ConfDir: nc.ConfDir}, Log: slog.New(slog.DiscardHandler)}
		p, err := b.Build(context.Background(), plan.Request{ContainerID: "c1", IfName: "eth0", Pod: plan.PodRef{Namespace: "ns", Name: "p", UID: "uid-1"}})
		if err != nil {
			var te *types.Error
			if !errors.As(err, &te) || (te.Code != types.ErrInvalidNetworkConfig && te.Code != types.ErrTryAgainLater) {
				t.Fatalf("Build refused %q with %v (%T), want a CNI error with code 7 or 11", config, err, err)
			}
			return
		}
		for _, att := range p.Attachments {
			var obj map[string]any
			if err := json.Unmarshal(att.Config, &obj); err != nil || obj == nil {
				t.Fatalf("attachment %s config %s is not a JSON object: %v", att.IfName, att.Config, err)
			}
			d, err := delegate.Load(att.Config)
			if err != nil {
				t.Fatalf("attachment %s config %s does not load: %v", att.IfName, att.Config, err)
			}
			for _, bin := range d.Binaries() {
				if nc.IsOwnType(bin.Type) {
					t.Fatalf("plan runs braid: %s of %s", bin.Field, att.Config)
				}
			}
		}
		if n := len(p.Attachments); n != 2 {
			t.Fatalf("%d attachments, want the cluster network and net1: %s", n, fmt.Sprint(p.Attachments))
		}
	})
}
