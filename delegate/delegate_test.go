package delegate_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/internal/testutil"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		wantList bool
		wantName string
		wantVer  string
		wantTyps []string
		wantCaps []string
		wantErr  string // part of the message of the code 7 error
		wantDet  string // part of its details
	}{
		{
			name:     "conf",
			conf:     `{"cniVersion":"0.4.0","name":"blue","type":"bridge","capabilities":{"mac":true,"ips":false}}`,
			wantName: "blue", wantVer: "0.4.0", wantTyps: []string{"bridge"}, wantCaps: []string{"mac"},
		},
		{
			name:     "conf without capabilities",
			conf:     "{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"plain\",\n  \"type\": \"macvlan\"\n}",
			wantName: "plain", wantVer: "1.0.0", wantTyps: []string{"macvlan"}, wantCaps: []string{},
		},
		{
			name: "conflist",
			conf: `{"cniVersion":"1.0.0","name":"green","plugins":[
				{"type":"bridge","capabilities":{"mac":true,"ips":true}},
				{"type":"tuning","capabilities":{"mac":true,"bandwidth":false}},
				{"type":"portmap","capabilities":{"portMappings":true}}]}`,
			wantList: true, wantName: "green", wantVer: "1.0.0",
			wantTyps: []string{"bridge", "tuning", "portmap"},
			wantCaps: []string{"ips", "mac", "portMappings"},
		},
		{
			name:     "conflist of one",
			conf:     `{"cniVersion":"1.1.0","name":"one","plugins":[{"type":"ptp"}]}`,
			wantList: true, wantName: "one", wantVer: "1.1.0", wantTyps: []string{"ptp"}, wantCaps: []string{},
		},
		{name: "invalid JSON", conf: `{"name":"x",`, wantErr: "invalid delegate config"},
		{name: "JSON list", conf: `[{"name":"x","type":"bridge"}]`, wantErr: "invalid delegate config"},
		{name: "null", conf: `null`, wantErr: "invalid delegate config"},
		{name: "no type", conf: `{"cniVersion":"1.0.0","name":"x"}`, wantErr: "invalid delegate config", wantDet: "missing 'type'"},
		{name: "no name", conf: `{"cniVersion":"1.0.0","type":"bridge"}`, wantErr: "has no name"},
		{name: "conflist without plugins", conf: `{"cniVersion":"1.0.0","name":"x","plugins":[]}`, wantErr: "conflist"},
		{name: "conflist with null plugins", conf: `{"cniVersion":"1.0.0","name":"x","plugins":null}`, wantErr: "conflist"},
		{name: "conflist whose plugins is an object", conf: `{"cniVersion":"1.0.0","name":"x","plugins":{"type":"bridge"}}`, wantErr: "conflist"},
		{name: "conflist without name", conf: `{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}`, wantErr: "conflist"},
		{name: "conflist plugin without type", conf: `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"},{"mtu":1}]}`, wantErr: "conflist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := delegate.Load([]byte(tt.conf))
			if tt.wantErr != "" {
				if d != nil {
					t.Errorf("got delegate %q with the error", d.Name())
				}
				te := testutil.WantCNIError(t, err, types.ErrInvalidNetworkConfig, tt.wantErr)
				if !strings.Contains(te.Details, tt.wantDet) {
					t.Errorf("details %q do not contain %q", te.Details, tt.wantDet)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if d.IsList() != tt.wantList {
				t.Errorf("IsList %v, want %v", d.IsList(), tt.wantList)
			}
			if d.Name() != tt.wantName {
				t.Errorf("Name %q, want %q", d.Name(), tt.wantName)
			}
			if d.CNIVersion() != tt.wantVer {
				t.Errorf("CNIVersion %q, want %q", d.CNIVersion(), tt.wantVer)
			}
			if got := d.Types(); !reflect.DeepEqual(got, tt.wantTyps) {
				t.Errorf("Types %q, want %q", got, tt.wantTyps)
			}
			if got := d.Capabilities(); !reflect.DeepEqual(got, tt.wantCaps) {
				t.Errorf("Capabilities %q, want %q", got, tt.wantCaps)
			}
			if !bytes.Equal(d.Bytes(), []byte(tt.conf)) {
				t.Errorf("Bytes %s, want the input unchanged", d.Bytes())
			}
		})
	}
}

func TestInjectCNIArgs(t *testing.T) {
	const big = "18446744073709551615"
	tests := []struct {
		name string
		conf string
		args map[string]any
		want string // compared as a document, numbers by their text
		// keep lists texts that must appear in the output verbatim.
		keep    []string
		wantErr string
	}{
		{
			name: "conf without args",
			conf: `{"cniVersion":"1.0.0","name":"a","type":"bridge","mtu":` + big + `}`,
			args: map[string]any{"k": "v"},
			want: `{"cniVersion":"1.0.0","name":"a","type":"bridge","mtu":` + big + `,"args":{"cni":{"k":"v"}}}`,
			keep: []string{`"mtu":` + big},
		},
		{
			name: "conf with args: existing keys kept, new merged, same key replaced",
			conf: `{"cniVersion":"1.0.0","name":"a","type":"bridge",
				"args":{"cni":{"keep":1,"k":"old","big":` + big + `},"other":{"x":true}},
				"ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/8"}]]},"ratio":0.1}`,
			args: map[string]any{"k": "new", "list": []any{"a", 2.5}},
			want: `{"cniVersion":"1.0.0","name":"a","type":"bridge",
				"args":{"cni":{"keep":1,"k":"new","big":` + big + `,"list":["a",2.5]},"other":{"x":true}},
				"ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/8"}]]},"ratio":0.1}`,
			keep: []string{`"big":` + big, `"ratio":0.1`},
		},
		{
			name: "conflist: every plugin",
			conf: `{"cniVersion":"1.0.0","name":"l","vlan":` + big + `,"plugins":[
				{"type":"bridge","args":{"cni":{"keep":"yes"}}},
				{"type":"tuning","sysctl":{"net.core.somaxconn":"500"}},
				{"type":"portmap","capabilities":{"portMappings":true},"args":{"labels":["x"]}}]}`,
			args: map[string]any{"k": "v"},
			want: `{"cniVersion":"1.0.0","name":"l","vlan":` + big + `,"plugins":[
				{"type":"bridge","args":{"cni":{"keep":"yes","k":"v"}}},
				{"type":"tuning","sysctl":{"net.core.somaxconn":"500"},"args":{"cni":{"k":"v"}}},
				{"type":"portmap","capabilities":{"portMappings":true},"args":{"labels":["x"],"cni":{"k":"v"}}}]}`,
			keep: []string{`"vlan":` + big},
		},
		{name: "invalid JSON", conf: `{"name":`, args: map[string]any{"k": "v"}, wantErr: "inject cni-args"},
		{name: "null", conf: `null`, args: map[string]any{"k": "v"}, wantErr: "not a JSON object"},
		{name: "JSON list", conf: `[{"type":"bridge"}]`, args: map[string]any{"k": "v"}, wantErr: "inject cni-args"},
		{name: "plugins not a list", conf: `{"name":"l","plugins":{"type":"bridge"}}`, args: map[string]any{"k": "v"}, wantErr: `"plugins" is`},
		{name: "plugin not an object", conf: `{"name":"l","plugins":[{"type":"bridge"},"tuning"]}`, args: map[string]any{"k": "v"}, wantErr: "plugin 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := delegate.InjectCNIArgs([]byte(tt.conf), tt.args)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("InjectCNIArgs accepted %s: %s", tt.conf, got)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("InjectCNIArgs: %v", err)
			}
			if g, w := testutil.Decode(t, got), testutil.Decode(t, []byte(tt.want)); !reflect.DeepEqual(g, w) {
				t.Errorf("config\n got %s\nwant %s", got, testutil.Compact(t, []byte(tt.want)))
			}
			for _, k := range tt.keep {
				if !bytes.Contains(got, []byte(k)) {
					t.Errorf("config %s lost %s", got, k)
				}
			}
			if _, err := delegate.Load(got); err != nil {
				t.Errorf("injected config does not load: %v", err)
			}
		})
	}
}

func TestInjectCNIArgsNoArgs(t *testing.T) {
	// Without args the bytes are returned untouched, not re-encoded.
	conf := []byte("{ \"name\": \"a\",\n \"type\": \"bridge\", \"n\": 1e3 }")
	for _, args := range []map[string]any{nil, {}} {
		got, err := delegate.InjectCNIArgs(conf, args)
		if err != nil {
			t.Fatalf("InjectCNIArgs(%v): %v", args, err)
		}
		if !bytes.Equal(got, conf) {
			t.Errorf("InjectCNIArgs(%v) = %s, want the input unchanged", args, got)
		}
	}
}

func TestRebuild(t *testing.T) {
	cniErr := &types.Error{Code: types.ErrInvalidNetworkConfig, Msg: "boom", Details: "line 3"}
	tests := []struct {
		name        string
		err         error
		wantCode    uint
		wantMsg     string
		wantDetails string
	}{
		{
			name:     "delegate error with a CNI code",
			err:      &delegate.Error{Plugin: "tuning", Err: fmt.Errorf("plugin type=%q failed (add): %w", "tuning", cniErr)},
			wantCode: types.ErrInvalidNetworkConfig, wantDetails: "line 3",
			wantMsg: `network ns/net (plugin tuning, interface net1): boom`,
		},
		{
			name:     "wrapped delegate error",
			err:      fmt.Errorf("attach: %w", &delegate.Error{Plugin: "macvlan", Err: &types.Error{Code: 11, Msg: "later"}}),
			wantCode: types.ErrTryAgainLater,
			wantMsg:  `network ns/net (plugin macvlan, interface net1): later`,
		},
		{
			name:     "delegate error without a CNI code",
			err:      &delegate.Error{Plugin: "bridge", Err: errors.New("exit status 2")},
			wantCode: types.ErrInternal,
			wantMsg:  `network ns/net (plugin bridge, interface net1): plugin bridge: exit status 2`,
		},
		{
			name:     "bare CNI error",
			err:      cniErr,
			wantCode: types.ErrInvalidNetworkConfig, wantDetails: "line 3",
			wantMsg: `network ns/net (plugin ?, interface net1): boom`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := delegate.Rebuild(tt.err, "ns/net", "net1")
			if got == nil {
				t.Fatal("Rebuild returned nil")
			}
			if got.Code != tt.wantCode || got.Msg != tt.wantMsg || got.Details != tt.wantDetails {
				t.Errorf("Rebuild = {%d %q %q}, want {%d %q %q}", got.Code, got.Msg, got.Details, tt.wantCode, tt.wantMsg, tt.wantDetails)
			}
		})
	}
	if got := delegate.Rebuild(nil, "ns/net", "net1"); got != nil {
		t.Errorf("Rebuild(nil) = %v, want nil", got)
	}
}

func TestInjectDeviceID(t *testing.T) {
	for _, tc := range []struct {
		name, in, id, want string
	}{
		{"single plugin", `{"cniVersion":"1.0.0","name":"a","type":"sriov","vlan":100}`, "0000:3b:02.1",
			`{"cniVersion":"1.0.0","deviceID":"0000:3b:02.1","name":"a","type":"sriov","vlan":100}`},
		{"conflist: the first plugin only", `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"sriov"},{"type":"tuning","mtu":9000}]}`, "vf1",
			`{"cniVersion":"1.0.0","name":"a","plugins":[{"deviceID":"vf1","type":"sriov"},{"mtu":9000,"type":"tuning"}]}`},
		{"host-device with a PCI address gets pciBusID", `{"cniVersion":"1.0.0","name":"a","type":"host-device"}`, "0000:5e:00.1",
			`{"cniVersion":"1.0.0","deviceID":"0000:5e:00.1","name":"a","pciBusID":"0000:5e:00.1","type":"host-device"}`},
		{"host-device naming its device keeps it", `{"cniVersion":"1.0.0","name":"a","type":"host-device","device":"eth5"}`, "0000:5e:00.1",
			`{"cniVersion":"1.0.0","device":"eth5","deviceID":"0000:5e:00.1","name":"a","type":"host-device"}`},
		{"host-device with an auxiliary device: no pciBusID", `{"cniVersion":"1.0.0","name":"a","type":"host-device"}`, "mlx5_core.sf.4",
			`{"cniVersion":"1.0.0","deviceID":"mlx5_core.sf.4","name":"a","type":"host-device"}`},
		{"a deviceID already there is replaced", `{"cniVersion":"1.0.0","name":"a","type":"sriov","deviceID":"old"}`, "new",
			`{"cniVersion":"1.0.0","deviceID":"new","name":"a","type":"sriov"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := delegate.InjectDeviceID([]byte(tc.in), tc.id)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`[]`, `{"plugins":[]}`, `{"plugins":"x"}`, `{"plugins":[1]}`} {
		if _, err := delegate.InjectDeviceID([]byte(bad), "x"); err == nil {
			t.Errorf("InjectDeviceID(%s): no error", bad)
		}
	}
}

func TestBinaries(t *testing.T) {
	tests := []struct {
		name, config string
		want         []delegate.Binary
	}{
		{"single", `{"cniVersion":"1.0.0","name":"a","type":"bridge","ipam":{"type":"host-local"}}`,
			[]delegate.Binary{{Field: "type", Type: "bridge"}, {Field: "ipam.type", Type: "host-local"}}},
		{"single without ipam", `{"cniVersion":"1.0.0","name":"a","type":"macvlan"}`,
			[]delegate.Binary{{Field: "type", Type: "macvlan"}}},
		{"conflist", `{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"macvlan","ipam":{"type":"static"}},{"type":"tuning"},{"type":"x","ipam":{"type":"braid"}}]}`,
			[]delegate.Binary{{Field: "plugins[0].type", Type: "macvlan"}, {Field: "plugins[0].ipam.type", Type: "static"},
				{Field: "plugins[1].type", Type: "tuning"}, {Field: "plugins[2].type", Type: "x"}, {Field: "plugins[2].ipam.type", Type: "braid"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := delegate.Load([]byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Binaries(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Binaries = %+v, want %+v", got, tt.want)
			}
		})
	}
}
