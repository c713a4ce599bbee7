package netconf

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    K8sArgs
		wantErr string
	}{
		{name: "empty", in: ""},
		{
			name: "kubelet args",
			in:   "IgnoreUnknown=1;K8S_POD_NAMESPACE=web;K8S_POD_NAME=nginx-0;K8S_POD_INFRA_CONTAINER_ID=3f4e0c5b;K8S_POD_UID=0b6c1a2e-5d4f-4e3a-9b8c-7d6e5f4a3b2c",
			want: K8sArgs{
				CommonArgs:                 types.CommonArgs{IgnoreUnknown: true},
				K8S_POD_NAMESPACE:          "web",
				K8S_POD_NAME:               "nginx-0",
				K8S_POD_INFRA_CONTAINER_ID: "3f4e0c5b",
				K8S_POD_UID:                "0b6c1a2e-5d4f-4e3a-9b8c-7d6e5f4a3b2c",
			},
		},
		{
			name: "unknown key ignored",
			in:   "IgnoreUnknown=true;K8S_POD_NAME=p;MAC=aa:bb:cc:dd:ee:ff",
			want: K8sArgs{CommonArgs: types.CommonArgs{IgnoreUnknown: true}, K8S_POD_NAME: "p"},
		},
		{name: "unknown key without IgnoreUnknown", in: "K8S_POD_NAME=p;MAC=aa", wantErr: "MAC=aa"},
		{name: "pair without value", in: "IgnoreUnknown=1;K8S_POD_NAME", wantErr: "K8S_POD_NAME"},
		{name: "bad IgnoreUnknown", in: "IgnoreUnknown=maybe", wantErr: "maybe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseArgs: %v", err)
				}
				if *got != tt.want {
					t.Errorf("ParseArgs = %+v, want %+v", *got, tt.want)
				}
				return
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) {
				t.Fatalf("error %v (%T) is not a *types.Error", err, err)
			}
			if cniErr.Code != types.ErrInvalidNetworkConfig {
				t.Errorf("code = %d, want %d", cniErr.Code, types.ErrInvalidNetworkConfig)
			}
			if !strings.Contains(cniErr.Msg, tt.wantErr) {
				t.Errorf("message %q does not contain %q", cniErr.Msg, tt.wantErr)
			}
		})
	}
}
