package annotations

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/braid-cni/braid/internal/testutil"
)

// short builds the Selection a short-form item is expected to parse into.
func short(namespace, name, ifname string) *Selection {
	return newSelection(namespace, name, ifname, "")
}

func TestParseNetworks(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    []*Selection
		wantErr []string // substrings of the error; nil means success
	}{
		{name: "empty", raw: "", want: nil},
		{name: "whitespace only", raw: " \t\n ", want: nil},
		{name: "empty JSON list", raw: "[]", want: nil},
		{name: "name only gets default namespace", raw: "foo", want: []*Selection{short("pod-ns", "foo", "")}},
		{name: "namespace and name", raw: "other/foo", want: []*Selection{short("other", "foo", "")}},
		{name: "name and interface", raw: "foo@net1", want: []*Selection{short("pod-ns", "foo", "net1")}},
		{name: "namespace name and interface", raw: "other/foo@net1", want: []*Selection{short("other", "foo", "net1")}},
		{
			name: "several items with whitespace",
			raw:  "  foo ,\tother/bar@net2 ,\n baz@net3  ",
			want: []*Selection{short("pod-ns", "foo", ""), short("other", "bar", "net2"), short("pod-ns", "baz", "net3")},
		},
		{
			name: "JSON list fills namespace only where missing",
			raw:  `[{"name":"foo"},{"name":"bar","namespace":"other","interface":"net2"}]`,
			want: []*Selection{short("pod-ns", "foo", ""), short("other", "bar", "net2")},
		},
		{
			name: "JSON list with surrounding whitespace and unknown keys",
			raw:  "\n [ {\"name\": \"foo\", \"futureKey\": {\"a\": 1}} ] \n",
			want: []*Selection{short("pod-ns", "foo", "")},
		},
		{name: "empty item in the middle", raw: "a,,b", wantErr: []string{`short-form item 2 of "a,,b" is empty`}},
		{name: "trailing comma", raw: "a,b,", wantErr: []string{`short-form item 3 of "a,b," is empty`}},
		{name: "blank item", raw: "a, ,b", wantErr: []string{"item 2", "is empty"}},
		{name: "two slashes", raw: "a/b/c", wantErr: []string{`short-form item "a/b/c": more than one '/'`}},
		{name: "two at signs", raw: "ok, a@b@c", wantErr: []string{`short-form item "a@b@c": more than one '@'`}},
		{name: "empty namespace", raw: "/foo", wantErr: []string{`short-form item "/foo": empty namespace`}},
		{name: "empty name after slash", raw: "ns/@net1", wantErr: []string{`short-form item "ns/@net1": empty network name`}},
		{name: "interface without name", raw: "a, @net1", wantErr: []string{`short-form item "@net1": empty network name`}},
		{name: "empty interface after at", raw: "ns/foo@", wantErr: []string{`short-form item "ns/foo@": empty interface name`}},
		{
			name:    "lone JSON object",
			raw:     `{"name":"foo"}`,
			wantErr: []string{"`{\"name\":\"foo\"}`", "a JSON list of objects is required"},
		},
		{name: "broken JSON", raw: `[{"name":"foo"`, wantErr: []string{"`[{\"name\":\"foo\"`", "not a valid JSON list"}},
		{
			name:    "element not an object",
			raw:     `[{"name":"foo"}, "bar"]`,
			wantErr: []string{"networks element 2 `\"bar\"`", "a JSON object is required"},
		},
		{name: "null element", raw: `[null]`, wantErr: []string{"networks element 1 `null`", "a JSON object is required"}},
		{
			name:    "wrong type in element",
			raw:     `[{"name":"a"},{"name":"b","interface":5}]`,
			wantErr: []string{"networks element 2 `{\"name\":\"b\",\"interface\":5}`", "cannot unmarshal number"},
		},
		{
			name:    "wrong type for deviceID",
			raw:     `[{"name":"a","deviceID":["x"]}]`,
			wantErr: []string{"networks element 1", "cannot unmarshal array"},
		},
		{
			name:    "invalid default route in JSON",
			raw:     `[{"name":"a","default-route":["not-an-ip"]}]`,
			wantErr: []string{"networks element 1", "not-an-ip"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetworks(tt.raw, "pod-ns")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("ParseNetworks(%q) = %v, want an error", tt.raw, got)
				}
				for _, sub := range tt.wantErr {
					if !strings.Contains(err.Error(), sub) {
						t.Errorf("error %q does not contain %q", err, sub)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNetworks(%q): %v", tt.raw, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseNetworks(%q)\n got %s\nwant %s", tt.raw, testutil.JSON(t, got), testutil.JSON(t, tt.want))
			}
		})
	}
}

func TestParseNetworksWrapsJSONErrors(t *testing.T) {
	_, err := ParseNetworks(`[{"name":"a","bandwidth":{"ingressRate":"fast"}}]`, "ns")
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		t.Fatalf("error %v does not wrap a *json.UnmarshalTypeError", err)
	}
}

// fullJSON sets every key of the multi-net spec v1.3 plus deviceID.
const fullJSON = `[{
	"name": "sriov-net",
	"namespace": "net-ns",
	"interface": "net1",
	"ips": ["10.1.1.5/24", "fd00::5/64"],
	"mac": "02:00:00:00:00:01",
	"infiniband-guid": "c2:11:22:33:44:55:66:77",
	"default-route": ["10.1.1.1", "fd00::1"],
	"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "192.0.2.1"}],
	"bandwidth": {"ingressRate": 1000, "ingressBurst": 2000, "egressRate": 3000, "egressBurst": 4000},
	"cni-args": {"mode": "vepa", "vlan": 100, "trust": true, "nested": {"list": ["a", 1]}},
	"deviceID": "0000:03:00.1",
	"ipam-claim-reference": "my-claim"
}]`

// fullSelection is what fullJSON parses into.
func fullSelection() *Selection {
	args := map[string]interface{}{
		"mode":   "vepa",
		"vlan":   float64(100),
		"trust":  true,
		"nested": map[string]interface{}{"list": []interface{}{"a", float64(1)}},
	}
	return &Selection{
		NetworkSelectionElement: nadv1.NetworkSelectionElement{
			Name:                  "sriov-net",
			Namespace:             "net-ns",
			InterfaceRequest:      "net1",
			IPRequest:             []string{"10.1.1.5/24", "fd00::5/64"},
			MacRequest:            "02:00:00:00:00:01",
			InfinibandGUIDRequest: "c2:11:22:33:44:55:66:77",
			GatewayRequest:        []net.IP{net.ParseIP("10.1.1.1"), net.ParseIP("fd00::1")},
			PortMappingsRequest: []*nadv1.PortMapEntry{
				{HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "192.0.2.1"},
			},
			BandwidthRequest: &nadv1.BandwidthEntry{
				IngressRate: 1000, IngressBurst: 2000, EgressRate: 3000, EgressBurst: 4000,
			},
			CNIArgs:            &args,
			IPAMClaimReference: "my-claim",
		},
		DeviceID: "0000:03:00.1",
	}
}

func TestParseNetworksEveryJSONField(t *testing.T) {
	got, err := ParseNetworks(fullJSON, "pod-ns")
	if err != nil {
		t.Fatalf("ParseNetworks: %v", err)
	}
	want := []*Selection{fullSelection()}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseNetworks\n got %s\nwant %s", testutil.JSON(t, got), testutil.JSON(t, want))
	}
	if got[0].DeviceID != "0000:03:00.1" {
		t.Errorf("DeviceID = %q, want %q", got[0].DeviceID, "0000:03:00.1")
	}
	if mode := (*got[0].CNIArgs)["mode"]; mode != "vepa" {
		t.Errorf(`cni-args["mode"] = %v, want "vepa"`, mode)
	}
	if err := Validate(got, "eth0"); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestSelectionRoundTrip(t *testing.T) {
	want := fullSelection()
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !strings.Contains(string(b), `"deviceID":"0000:03:00.1"`) {
		t.Errorf("marshaled %s lacks deviceID", b)
	}
	got := &Selection{}
	if err := json.Unmarshal(b, got); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip through %s\n got %s\nwant %s", b, testutil.JSON(t, got), testutil.JSON(t, want))
	}

	// A value (not a pointer) must marshal the same way.
	byValue, err := json.Marshal(*want)
	if err != nil {
		t.Fatalf("Marshal by value: %v", err)
	}
	if string(byValue) != string(b) {
		t.Errorf("by value %s, by pointer %s", byValue, b)
	}
}

func TestSelectionMarshalMinimal(t *testing.T) {
	tests := []struct {
		name string
		sel  Selection
		want string
	}{
		{name: "no deviceID", sel: *short("ns", "a", ""), want: `{"name":"a","namespace":"ns"}`},
		{name: "deviceID only added key", sel: Selection{DeviceID: "x y\""}, want: `{"name":"","deviceID":"x y\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.sel)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tt.want {
				t.Errorf("Marshal = %s, want %s", b, tt.want)
			}
		})
	}
}

func TestSelectionString(t *testing.T) {
	tests := []struct {
		name string
		sel  *Selection
		want string
	}{
		{name: "full", sel: short("ns", "foo", "net1"), want: "ns/foo@net1"},
		{name: "no interface", sel: short("ns", "foo", ""), want: "ns/foo"},
		{name: "no namespace", sel: short("", "foo", "net1"), want: "foo@net1"},
		{name: "nil", sel: nil, want: "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sel.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseDefaultNetwork(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    *Selection
		wantErr string
	}{
		{name: "empty", raw: "", want: nil},
		{name: "whitespace", raw: "  ", want: nil},
		{name: "name only", raw: "calico", want: short("pod-ns", "calico", "")},
		{name: "namespace and name", raw: " kube-system/calico\n", want: short("kube-system", "calico", "")},
		{name: "interface not allowed", raw: "ns/calico@eth0", wantErr: `default network "ns/calico@eth0": an interface name is not allowed`},
		{name: "more than one", raw: "a,b", wantErr: `default network "a,b": exactly one network is allowed`},
		{name: "two slashes", raw: "a/b/c", wantErr: `default network "a/b/c": more than one '/'`},
		{name: "empty name", raw: "ns/", wantErr: `default network "ns/": empty network name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDefaultNetwork(tt.raw, "pod-ns")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseDefaultNetwork(%q) error = %v, want %q", tt.raw, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDefaultNetwork(%q): %v", tt.raw, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseDefaultNetwork(%q) = %s, want %s", tt.raw, testutil.JSON(t, got), testutil.JSON(t, tt.want))
			}
		})
	}
}

func TestQuote(t *testing.T) {
	long := strings.Repeat("x", excerptLen-1) + "é"
	tests := []struct {
		name  string
		quote func(string) string
		in    string
		want  string
	}{
		{name: "text", quote: quoteText, in: "a b", want: `"a b"`},
		{name: "long text cut on rune boundary", quote: quoteText, in: long, want: `"` + long[:excerptLen-1] + `..."`},
		{name: "JSON compacted and backquoted", quote: quoteJSON, in: "{ \"a\" :\n 1 }", want: "`{\"a\":1}`"},
		{name: "invalid JSON kept as is", quote: quoteJSON, in: "[1,", want: "`[1,`"},
		{name: "JSON with a backquote", quote: quoteJSON, in: "[\"`\"]", want: `"[\"` + "`" + `\"]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.quote(tt.in); got != tt.want {
				t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestParameters: one attachment's request, whatever form it is written
// in, without the keys that say which network on which interface.
func TestParameters(t *testing.T) {
	for _, tc := range []struct{ annot, want string }{
		{"blue", `{}`},
		{"other/blue@ext0", `{}`},
		{`[{"name":"blue","namespace":"ns1","interface":"ext0"}]`, `{}`},
		{`[{"name":"blue","ips":["10.1.0.5/24"],"mac":"0a:00:00:00:00:01"}]`, `{"ips":["10.1.0.5/24"],"mac":"0a:00:00:00:00:01"}`},
		{`[{"cni-args":{"y":"1","x":{"b":2,"a":1}},"name":"blue"}]`, `{"cni-args":{"x":{"a":1,"b":2},"y":"1"}}`},
		{`[{"name":"blue","deviceID":"0000:3b:02.1","default-route":["10.1.0.1"]}]`, `{"default-route":["10.1.0.1"],"deviceID":"0000:3b:02.1"}`},
	} {
		sels, err := ParseNetworks(tc.annot, "ns1")
		if err != nil {
			t.Fatalf("%s: %v", tc.annot, err)
		}
		got, err := sels[0].Parameters()
		if err != nil || string(got) != tc.want {
			t.Errorf("Parameters of %s = %s, %v; want %s", tc.annot, got, err, tc.want)
		}
	}
}
