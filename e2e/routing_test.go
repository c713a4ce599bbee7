package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/braid-cni/braid/annotations"
	"github.com/braid-cni/braid/e2e/framework"
	"github.com/braid-cni/braid/gateway"
	"github.com/braid-cni/braid/internal/testutil"
)

// TestDefaultRoute: "default-route" moves the pod's IPv4 default route to a
// secondary network, and the netns, the returned result and network-status
// all agree.
func TestDefaultRoute(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		for _, v := range testutil.SpecVersions() {
			t.Run(v, func(t *testing.T) {
				n := newNode(t, mode, v)
				n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, true))
				gw := fmt.Sprintf("10.201.%d.1", n.id)
				ann := fmt.Sprintf(`[{"name": "blue", "default-route": [%q]}]`, gw)
				sb := n.sandbox(n.createPod("gw", map[string]string{nadv1.NetworkAttachmentAnnot: ann}))
				res := sb.mustAdd()

				routes, err := gateway.DefaultRoutes(sb.netns.Path())
				if err != nil {
					t.Fatal(err)
				}
				var v4 []gateway.Route
				for _, r := range routes {
					if r.Family == netlink.FAMILY_V4 {
						v4 = append(v4, r)
					}
				}
				if len(v4) != 1 || v4[0].IfName != "net1" || v4[0].GW.String() != gw {
					t.Errorf("IPv4 default routes in the pod = %+v, want one via %s on net1", v4, gw)
				}
				var resultGW []string
				for _, r := range res.Routes {
					if gateway.IsDefault(&r.Dst) {
						resultGW = append(resultGW, r.GW.String())
					}
				}
				if len(resultGW) != 1 || resultGW[0] != gw {
					t.Errorf("default routes in the returned result via %v, want [%s]", resultGW, gw)
				}
				statuses := networkStatus(t, n.getPod("gw"))
				if len(statuses) != 2 || statuses[0].Default || !statuses[1].Default {
					t.Fatalf("network-status default flags wrong: %+v", statuses)
				}
				if len(statuses[1].Gateway) != 1 || statuses[1].Gateway[0] != gw || len(statuses[0].Gateway) != 0 {
					t.Errorf("network-status gateways = %v / %v, want none / [%s]", statuses[0].Gateway, statuses[1].Gateway, gw)
				}
				if v != "0.3.1" {
					if err := sb.check(); err != nil {
						t.Errorf("CHECK after moving the default route: %v", err)
					}
				}
				sb.mustDel()
				released(t, n, sb)
			})
		}
	})
}

// TestPing: two pods reach each other over a secondary bridge network.
func TestPing(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.1.0")
		n.createNAD(n.namespace, "blue", n.bridgeNet("blue", 1, false))
		a := n.sandbox(n.createPod("a", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
		b := n.sandbox(n.createPod("b", map[string]string{nadv1.NetworkAttachmentAnnot: "blue"}))
		a.mustAdd()
		b.mustAdd()
		target := strings.Split(b.addrs("net1")[0], "/")[0]
		if err := ping(a, target); err != nil {
			t.Fatalf("ping %s from pod a over net1: %v", target, err)
		}
		b.mustDel()
		if err := ping(a, target); err == nil {
			t.Errorf("ping %s answered after pod b was deleted", target)
		}
		a.mustDel()
	})
}

// ping sends ICMP echo requests from inside the sandbox, three tries.
func ping(from *sandbox, target string) error {
	return from.netns.Do(func(ns.NetNS) error {
		conn, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer conn.Close()
		dst := &net.IPAddr{IP: net.ParseIP(target)}
		for seq := 1; seq <= 3; seq++ {
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: seq, Data: []byte("braid")}}
			data, err := msg.Marshal(nil)
			if err != nil {
				return err
			}
			if _, err := conn.WriteTo(data, dst); err != nil {
				return err
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 1500)
			for {
				nr, peer, err := conn.ReadFrom(buf)
				if err != nil {
					break
				}
				reply, err := icmp.ParseMessage(1, buf[:nr])
				if err == nil && reply.Type == ipv4.ICMPTypeEchoReply && peer.String() == target {
					return nil
				}
			}
		}
		return fmt.Errorf("no echo reply from %s", target)
	})
}

// TestDefaultNetworkAnnotation: v1.multus-cni.io/default-network replaces
// the cluster network for one pod; its namespace defaults to multusNamespace.
func TestDefaultNetworkAnnotation(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.0.0")
		alt := n.bridgeNet("alt", 4, true)
		alt["ipam"].(map[string]any)["routes"] = []any{map[string]any{"dst": "0.0.0.0/0"}}
		name := fmt.Sprintf("alt-%d", n.id)
		n.createNAD("kube-system", name, alt)
		t.Cleanup(func() { n.deleteNAD("kube-system", name) })
		sb := n.sandbox(n.createPod("alt", map[string]string{annotations.DefaultNetworkKey: name}))
		res := sb.mustAdd()
		_, subnet, _ := net.ParseCIDR(n.subnet(4))
		if len(res.IPs) != 1 || !subnet.Contains(res.IPs[0].Address.IP) {
			t.Errorf("result IPs = %v, want one in %s", res.IPs, subnet)
		}
		statuses := networkStatus(t, n.getPod("alt"))
		if len(statuses) != 1 || statuses[0].Name != "kube-system/"+name || !statuses[0].Default || statuses[0].Interface != "eth0" {
			t.Errorf("network-status = %+v, want kube-system/%s on eth0, default", statuses, name)
		}
		if l := n.leases("cluster"); len(l) != 0 {
			t.Errorf("the configured cluster network was used too: %v", l)
		}
		sb.mustDel()
		if l := n.leases("alt"); len(l) != 0 {
			t.Errorf("alt still leases %v", l)
		}
	})
}

// TestNamespaces: a NAD in another namespace works without isolation; with
// isolation only the pod's namespace and globalNamespaces do.
func TestNamespaces(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		tests := []struct {
			name   string
			conf   map[string]any
			wantOK bool
		}{
			{name: "no isolation", wantOK: true},
			{name: "isolation", conf: map[string]any{"namespaceIsolation": true}, wantOK: false},
			{name: "isolation with the namespace global", conf: map[string]any{"namespaceIsolation": true, "globalNamespaces": "GLOBAL"}, wantOK: true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n := newNode(t, mode, "1.0.0")
				other := n.namespace + "-other"
				if err := framework.CreateNamespaceWithSA(t.Context(), n.kube, other); err != nil {
					t.Fatal(err)
				}
				n.createNAD(other, "blue", n.bridgeNet("blue", 1, false))
				t.Cleanup(func() { n.deleteNAD(other, "blue") })
				for k, v := range tt.conf {
					if s, ok := v.(string); ok {
						v = strings.ReplaceAll(s, "GLOBAL", other)
					}
					n.braidConf[k] = v
				}
				sb := n.sandbox(n.createPod("x", map[string]string{nadv1.NetworkAttachmentAnnot: other + "/blue"}))
				_, err := sb.add()
				if tt.wantOK {
					if err != nil {
						t.Fatalf("ADD: %v", err)
					}
					if _, ok := sb.links()["net1"]; !ok {
						t.Error("net1 missing")
					}
					sb.mustDel()
					return
				}
				if err == nil || cniCode(err) != 7 || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), n.namespace) {
					t.Fatalf("ADD error = %v, want code 7 naming %s and %s", err, n.namespace, other)
				}
				if got := sb.links(); len(got) != 0 {
					t.Errorf("refused ADD left %v", keys(got))
				}
			})
		}
	})
}

// TestPortMappings: the runtime's portMappings reach the cluster network's
// portmap plugin through braid, and DEL removes the mapping again.
func TestPortMappings(t *testing.T) {
	inModes(t, func(t *testing.T, mode string) {
		n := newNode(t, mode, "1.0.0")
		cluster := n.clusterConfig()
		cluster["plugins"] = append(cluster["plugins"].([]any), map[string]any{
			"type": "portmap", "capabilities": map[string]any{"portMappings": true},
		})
		writeJSON(t, n.braidConf["clusterNetwork"].(string), cluster)
		n.braidConf["capabilities"] = map[string]any{"portMappings": true}
		sb := n.sandbox(n.createPod("web", nil))

		listenIn(t, sb, "0.0.0.0:8080")

		hostPort := 30000 + n.id
		c, list := n.runtime()
		rt := sb.rt()
		rt.CapabilityArgs = map[string]any{"portMappings": []map[string]any{{"hostPort": hostPort, "containerPort": 8080, "protocol": "tcp"}}}
		if _, err := c.AddNetworkList(t.Context(), list, rt); err != nil {
			t.Fatal(err)
		}
		hostAddr := net.JoinHostPort(fmt.Sprintf("10.200.%d.1", n.id), fmt.Sprint(hostPort))
		if got, err := dialRead(hostAddr); err != nil || got != "braid" {
			t.Errorf("host port %s: read %q, %v; want the pod's answer", hostAddr, got, err)
		}
		if err := c.DelNetworkList(t.Context(), list, rt); err != nil {
			t.Fatal(err)
		}
		if got, err := dialRead(hostAddr); err == nil {
			t.Errorf("host port %s still answers %q after DEL", hostAddr, got)
		}
	})
}

func dialRead(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	nr, err := conn.Read(buf)
	return string(buf[:nr]), err
}
