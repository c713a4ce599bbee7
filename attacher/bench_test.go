package attacher

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/journal"
	"github.com/braid-cni/braid/plan"
	"github.com/braid-cni/braid/status"
)

// stubInvoker answers ADD with a fixed result per interface and everything
// else with success, without recording anything.
type stubInvoker struct {
	results map[string]*current.Result // by interface name
}

func (s *stubInvoker) Add(_ context.Context, _ *delegate.Delegate, rt delegate.Runtime) (types.Result, error) {
	return s.results[rt.IfName], nil
}

func (s *stubInvoker) Del(context.Context, *delegate.Delegate, delegate.Runtime) error   { return nil }
func (s *stubInvoker) Check(context.Context, *delegate.Delegate, delegate.Runtime) error { return nil }
func (s *stubInvoker) Status(context.Context, *delegate.Delegate) error                  { return nil }
func (s *stubInvoker) GC(context.Context, *delegate.Delegate, []types.GCAttachment) error {
	return nil
}
func (s *stubInvoker) SetCachedResult(*delegate.Delegate, delegate.Runtime, types.Result) error {
	return nil
}

// nopRecorder accepts every status and event and keeps nothing.
type nopRecorder struct{}

func (nopRecorder) Record(context.Context, status.PodRef, []nadv1.NetworkStatus) error { return nil }
func (nopRecorder) Event(context.Context, status.PodRef, string, string, string) error { return nil }

// benchPlan is a pod with the cluster network and n secondary networks, and
// the results their delegates return.
func benchPlan(n int) (*plan.Plan, map[string]*current.Result) {
	p := &plan.Plan{
		Version:     plan.Version,
		ContainerID: "bench",
		NetNS:       "/var/run/netns/bench",
		IfName:      "eth0",
		Pod:         plan.PodRef{Namespace: "ns1", Name: "web", UID: "uid"},
		Attachments: []plan.Attachment{{IfName: "eth0", Network: clusterName, Cluster: true, Config: conf("1.1.0", clusterName, "ptp")}},
	}
	results := map[string]*current.Result{"eth0": clusterResult()}
	for i := 1; i <= n; i++ {
		ifName := "net" + strconv.Itoa(i)
		name := "sec" + strconv.Itoa(i)
		p.Attachments = append(p.Attachments, plan.Attachment{IfName: ifName, Network: "ns1/" + name, Config: conf("1.1.0", name, "macvlan")})
		results[ifName] = &current.Result{
			CNIVersion: "1.1.0",
			Interfaces: []*current.Interface{{Name: ifName, Mac: "0a:00:00:00:01:01", Sandbox: p.NetNS}},
			IPs:        []*current.IPConfig{{Interface: current.Int(0), Address: cidr(fmt.Sprintf("10.%d.0.5/24", i)), Gateway: net.IPv4(10, byte(i), 0, 1)}},
		}
	}
	return p, results
}

func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{0, 1, 4, 8, 16} {
		b.Run(fmt.Sprintf("secondaries=%d", n), func(b *testing.B) {
			p, results := benchPlan(n)
			a := &Attacher{
				Invoker:  &stubInvoker{results: results},
				Journal:  journal.New(b.TempDir()),
				Recorder: nopRecorder{},
				Routes:   func(string, []gateway.Request) error { return nil },
				Log:      slog.New(slog.DiscardHandler),
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := a.addPlan(ctx, p, "1.1.0")
				if err != nil {
					b.Fatalf("Add: %v", err)
				}
				if got := len(res.(*current.Result).Interfaces); got != n+2 {
					b.Fatalf("result has %d interfaces, want %d", got, n+2)
				}
				if err := a.delPlan(ctx, p, p.NetNS); err != nil {
					b.Fatalf("Del: %v", err)
				}
			}
		})
	}
}
