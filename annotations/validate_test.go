package annotations

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// wantProblem is one *FieldError a Validate case expects, in order.
type wantProblem struct {
	index    int
	element  string
	field    string
	contains []string // substrings of Error()
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		raw  string // networks annotation, parsed with namespace "pod-ns"
		want []wantProblem
	}{
		{name: "short form is valid", raw: "foo, other/bar@net1, baz@net2"},
		{name: "full JSON is valid", raw: fullJSON},
		{
			name: "uppercase name",
			raw:  "Foo_Bar",
			want: []wantProblem{{1, "pod-ns/Foo_Bar", "name", []string{`name "Foo_Bar" is not a DNS-1123 subdomain`}}},
		},
		{
			name: "missing name",
			raw:  `[{"namespace":"ns"}]`,
			want: []wantProblem{{1, "ns/", "name", []string{"name is required"}}},
		},
		{
			name: "namespace with a dot",
			raw:  "a, bad.ns/foo",
			want: []wantProblem{{2, "bad.ns/foo", "namespace", []string{`namespace "bad.ns" is not a DNS-1123 label`}}},
		},
		{
			name: "interface too long",
			raw:  "foo@abcdefghijklmnop",
			want: []wantProblem{{1, "pod-ns/foo@abcdefghijklmnop", "interface", []string{"is longer than 15 bytes"}}},
		},
		{name: "interface of 15 bytes", raw: "foo@abcdefghijklmno"},
		{
			name: "interface with slash",
			raw:  `[{"name":"foo","interface":"a/b"}]`,
			want: []wantProblem{{1, "pod-ns/foo@a/b", "interface", []string{`interface "a/b" contains '/' or ':'`}}},
		},
		{
			name: "interface with colon",
			raw:  "foo@net:1",
			want: []wantProblem{{1, "pod-ns/foo@net:1", "interface", []string{`"net:1" contains '/' or ':'`}}},
		},
		{
			name: "interface with whitespace",
			raw:  `[{"name":"foo","interface":"net 1"}]`,
			want: []wantProblem{{1, "pod-ns/foo@net 1", "interface", []string{`"net 1" contains whitespace`}}},
		},
		{
			name: "interface with control character",
			raw:  `[{"name":"foo","interface":"net\u0000"}]`,
			want: []wantProblem{{1, "pod-ns/foo@net\x00", "interface", []string{"contains a control character"}}},
		},
		{
			name: "interface dot and dot-dot",
			raw:  "a@., b@..",
			want: []wantProblem{
				{1, "pod-ns/a@.", "interface", []string{`interface "." is not a valid interface name`}},
				{2, "pod-ns/b@..", "interface", []string{`interface ".." is not a valid interface name`}},
			},
		},
		{
			name: "interface lo",
			raw:  "foo@net1, other/foo@lo",
			want: []wantProblem{{2, "other/foo@lo", "interface", []string{`network "other/foo@lo" (element 2): interface "lo" is reserved`}}},
		},
		{
			name: "interface equals runtime interface",
			raw:  "foo@eth0",
			want: []wantProblem{{1, "pod-ns/foo@eth0", "interface", []string{`"eth0" is the pod's main interface`}}},
		},
		{
			name: "interface used twice",
			raw:  "a@net1, b, c@net1, d@net1",
			want: []wantProblem{
				{3, "pod-ns/c@net1", "interface", []string{`"net1" is already used by element 1 ("pod-ns/a@net1")`}},
				{4, "pod-ns/d@net1", "interface", []string{`"net1" is already used by element 1`}},
			},
		},
		{name: "ips as CIDR and plain IP", raw: `[{"name":"a","ips":["10.0.0.1/24","10.0.0.2","fd00::1","fd00::2/64"]}]`},
		{
			name: "ips not an address",
			raw:  `[{"name":"a","ips":["10.0.0.1/24","10.0.0.300",""]}]`,
			want: []wantProblem{
				{1, "pod-ns/a", "ips", []string{`ips "10.0.0.300" is neither an IP address nor a CIDR`}},
				{1, "pod-ns/a", "ips", []string{`ips "" is neither`}},
			},
		},
		{
			name: "mac garbage and mac of 8 bytes",
			raw:  `[{"name":"a","mac":"zz:00"},{"name":"b","mac":"02:00:00:00:00:00:00:01"}]`,
			want: []wantProblem{
				{1, "pod-ns/a", "mac", []string{`mac "zz:00" is not a hardware address`}},
				{2, "pod-ns/b", "mac", []string{"is 8 bytes long, want 6"}},
			},
		},
		{
			name: "infiniband guid of 6 bytes and garbage",
			raw:  `[{"name":"a","infiniband-guid":"02:00:00:00:00:01"},{"name":"b","infiniband-guid":"guid"}]`,
			want: []wantProblem{
				{1, "pod-ns/a", "infiniband-guid", []string{"is 6 bytes long, want 8"}},
				{2, "pod-ns/b", "infiniband-guid", []string{`infiniband-guid "guid" is not a hardware address`}},
			},
		},
		{name: "one default route per family", raw: `[{"name":"a","default-route":["10.0.0.1"]},{"name":"b","default-route":["fd00::1"]}]`},
		{
			name: "two IPv4 default routes in different elements",
			raw:  `[{"name":"a","default-route":["10.0.0.1"]},{"name":"b"},{"name":"c","interface":"net3","default-route":["10.9.0.1"]}]`,
			want: []wantProblem{{3, "pod-ns/c@net3", "default-route", []string{
				`"10.9.0.1" is a second IPv4 default route; element 1 ("pod-ns/a") already sets "10.0.0.1"`,
			}}},
		},
		{
			name: "two IPv6 default routes in one element",
			raw:  `[{"name":"a","default-route":["fd00::1","10.0.0.1","fd00::2"]}]`,
			want: []wantProblem{{1, "pod-ns/a", "default-route", []string{`"fd00::2" is a second IPv6 default route`}}},
		},
		{
			name: "empty default route",
			raw:  `[{"name":"a","default-route":[""]}]`,
			want: []wantProblem{{1, "pod-ns/a", "default-route", []string{`default-route "" is not an IP address`}}},
		},
		{name: "port mapping with upper-case protocol", raw: `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":65535,"protocol":"SCTP"}]}]`},
		{
			name: "port mapping out of range",
			raw:  `[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80},{"hostPort":0,"containerPort":70000}]}]`,
			want: []wantProblem{{1, "pod-ns/a", "portMappings", []string{
				"portMappings entry 2: hostPort 0 is outside 1-65535, containerPort 70000 is outside 1-65535",
			}}},
		},
		{
			name: "port mapping bad protocol, bad host IP and null entry",
			raw:  `[{"name":"a","portMappings":[{"hostPort":80,"containerPort":80,"protocol":"icmp","hostIP":"host"},null]}]`,
			want: []wantProblem{
				{1, "pod-ns/a", "portMappings", []string{`entry 1: protocol "icmp" is not tcp, udp or sctp, hostIP "host" is not an IP address`}},
				{1, "pod-ns/a", "portMappings", []string{"portMappings entry 2 is null"}},
			},
		},
		{
			name: "negative bandwidth",
			raw:  `[{"name":"a","bandwidth":{"ingressRate":-1,"ingressBurst":1,"egressRate":2,"egressBurst":-3}}]`,
			want: []wantProblem{{1, "pod-ns/a", "bandwidth", []string{"bandwidth ingressRate -1 is negative, egressBurst -3 is negative"}}},
		},
		{
			name: "ipam claim reference not a subdomain",
			raw:  `[{"name":"a","ipam-claim-reference":"My_Claim"}]`,
			want: []wantProblem{{1, "pod-ns/a", "ipam-claim-reference", []string{`ipam-claim-reference "My_Claim" is not a DNS-1123 subdomain`}}},
		},
		{
			name: "device ID with whitespace",
			raw:  `[{"name":"a","deviceID":"0000:03:00.1 "}]`,
			want: []wantProblem{{1, "pod-ns/a", "deviceID", []string{`deviceID "0000:03:00.1 " contains whitespace`}}},
		},
		{
			name: "every problem is reported",
			raw:  `[{"name":"A","namespace":"N","interface":"lo","mac":"x","deviceID":"a b"}]`,
			want: []wantProblem{
				{1, "N/A@lo", "name", nil},
				{1, "N/A@lo", "namespace", nil},
				{1, "N/A@lo", "interface", nil},
				{1, "N/A@lo", "mac", nil},
				{1, "N/A@lo", "deviceID", nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sels, err := ParseNetworks(tt.raw, "pod-ns")
			if err != nil {
				t.Fatalf("ParseNetworks(%q): %v", tt.raw, err)
			}
			checkProblems(t, Validate(sels, "eth0"), tt.want)
		})
	}
}

func TestValidateEmptyNamespaceAndNilElement(t *testing.T) {
	sels, err := ParseNetworks("foo", "")
	if err != nil {
		t.Fatalf("ParseNetworks: %v", err)
	}
	sels = append(sels, nil)
	checkProblems(t, Validate(sels, ""), []wantProblem{
		{1, "foo", "namespace", []string{"namespace is required"}},
		{2, "<nil>", "element", []string{"element is null"}},
	})
}

// checkProblems asserts that err joins exactly the wanted *FieldErrors, in
// order, and that each message quotes its element.
func checkProblems(t *testing.T, err error, want []wantProblem) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("Validate: %v, want no error", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Validate returned nil, want %d problems", len(want))
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate error %T is not joined", err)
	}
	got := joined.Unwrap()
	if len(got) != len(want) {
		t.Fatalf("Validate returned %d problems, want %d:\n%v", len(got), len(want), err)
	}
	for i, w := range want {
		var fe *FieldError
		if !errors.As(got[i], &fe) {
			t.Errorf("problem %d is %T, want *FieldError", i, got[i])
			continue
		}
		if fe.Index != w.index || fe.Element != w.element || fe.Field != w.field {
			t.Errorf("problem %d = (%d, %q, %q), want (%d, %q, %q)",
				i, fe.Index, fe.Element, fe.Field, w.index, w.element, w.field)
		}
		msg := fe.Error()
		prefix := fmt.Sprintf("network %q (element %d): %s ", w.element, w.index, w.field)
		if !strings.HasPrefix(msg, prefix) {
			t.Errorf("problem %d = %q, want prefix %q", i, msg, prefix)
		}
		for _, sub := range w.contains {
			if !strings.Contains(msg, sub) {
				t.Errorf("problem %d = %q, want it to contain %q", i, msg, sub)
			}
		}
	}
}

// TestValidateBounded: a list with thousands of problems gives a bounded
// error, the rest counted.
func TestValidateBounded(t *testing.T) {
	parts := make([]string, 5000)
	for i := range parts {
		parts[i] = "blue@net1" // every element after the first repeats net1
	}
	sels, err := ParseNetworks(strings.Join(parts, ","), "ns")
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(sels, "eth0")
	if err == nil {
		t.Fatal("Validate = nil, want the repeated interfaces")
	}
	errs := err.(interface{ Unwrap() []error }).Unwrap()
	if len(errs) != maxReported+1 {
		t.Errorf("%d errors, want %d and a count", len(errs), maxReported+1)
	}
	if last := errs[len(errs)-1].Error(); last != fmt.Sprintf("and %d more problems", 4999-maxReported) {
		t.Errorf("last error = %q", last)
	}
	if n := len(err.Error()); n > 4096 {
		t.Errorf("message is %d bytes", n)
	}
}

func TestCheckCount(t *testing.T) {
	if err := CheckCount(32, 32); err != nil {
		t.Errorf("CheckCount(32, 32) = %v", err)
	}
	err := CheckCount(33, 32)
	if err == nil || !strings.Contains(err.Error(), "33 networks") || !strings.Contains(err.Error(), "32") || !strings.Contains(err.Error(), "maxNetworksPerPod") {
		t.Errorf("CheckCount(33, 32) = %v, want one naming the count, the limit and the key", err)
	}
}
