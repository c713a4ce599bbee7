package nad_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
	"github.com/braid-cni/braid/nad"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		spec string
		// wantSame: the bytes are spec's own, not re-encoded.
		wantSame bool
		// wantDoc is compared as a decoded document, for configs whose
		// name Config had to set.
		wantDoc any
		// wantNil: no config and no error (read from confDir).
		wantNil     bool
		wantMsg     string // the whole CNI message, code 7
		wantDetails bool
	}{
		{name: "empty", spec: "", wantNil: true},
		{name: "blank", spec: "  \n\t", wantNil: true},
		{name: "conf with name", spec: bridgeConf, wantSame: true},
		{name: "conflist with name", spec: tuningList, wantSame: true},
		{name: "leading blanks kept", spec: "\n  " + bridgeConf + "\n", wantSame: true},
		{name: "name that is not a string is left to delegate.Load", spec: `{"name":true,"type":"bridge"}`, wantSame: true},
		{name: "conf without name gets the NAD's", spec: bridgeConfNoName, wantDoc: withName(t, bridgeConfNoName, "net")},
		{name: "conflist without name gets the NAD's", spec: tuningListNoName, wantDoc: withName(t, tuningListNoName, "net")},
		{name: "empty name gets the NAD's", spec: `{"name":"","type":"bridge"}`, wantDoc: map[string]any{"name": "net", "type": "bridge"}},
		{name: "null", spec: "null", wantMsg: "spec.config is not a JSON object"},
		{name: "null with blanks", spec: " null\n", wantMsg: "spec.config is not a JSON object"},
		{name: "list", spec: `[{"type":"bridge"}]`, wantMsg: "spec.config is not a JSON object"},
		{name: "string", spec: `"bridge"`, wantMsg: "spec.config is not a JSON object"},
		{name: "number", spec: `3`, wantMsg: "spec.config is not a JSON object"},
		{name: "cut short", spec: `{"cniVersion": "1.0.0", "type": `, wantMsg: "spec.config is not valid JSON", wantDetails: true},
		{name: "trailing comma", spec: `{"type":"bridge",}`, wantMsg: "spec.config is not valid JSON", wantDetails: true},
		{name: "not JSON at all", spec: `hello`, wantMsg: "spec.config is not valid JSON", wantDetails: true},
		{name: "two documents", spec: `{"type":"bridge"} {}`, wantMsg: "spec.config is not valid JSON", wantDetails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := nad.Config("net", tt.spec)
			if tt.wantMsg != "" {
				if got != nil {
					t.Errorf("got config %s with the error", got)
				}
				te := testutil.WantCNIError(t, err, types.ErrInvalidNetworkConfig)
				if te.Msg != tt.wantMsg {
					t.Errorf("message %q, want %q", te.Msg, tt.wantMsg)
				}
				if !strings.HasPrefix(te.Msg, nad.ConfigField+" ") {
					t.Errorf("message %q does not name %s", te.Msg, nad.ConfigField)
				}
				if (te.Details != "") != tt.wantDetails {
					t.Errorf("details %q, want some: %v", te.Details, tt.wantDetails)
				}
				return
			}
			if err != nil {
				t.Fatalf("Config: %v", err)
			}
			switch {
			case tt.wantNil:
				if got != nil {
					t.Errorf("config %s, want nil", got)
				}
			case tt.wantSame:
				if string(got) != tt.spec {
					t.Errorf("config\n got %s\nwant %s", got, tt.spec)
				}
			default:
				if g := testutil.Decode(t, got); !reflect.DeepEqual(g, tt.wantDoc) {
					t.Errorf("config\n got %#v\nwant %#v", g, tt.wantDoc)
				}
			}
		})
	}
}
