package caller

import (
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestMark(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		id      string
		want    []string
	}{
		{"added", []string{"PATH=/bin", "CNI_COMMAND=ADD"}, "c1", []string{"PATH=/bin", "CNI_COMMAND=ADD", Env + "=c1"}},
		{"replaced", []string{Env + "=old", "PATH=/bin"}, "c2", []string{"PATH=/bin", Env + "=c2"}},
		{"no container", nil, "", []string{Env + "=?"}},
		{"prefix of another name kept", []string{Env + "_X=1"}, "c3", []string{Env + "_X=1", Env + "=c3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mark(tt.environ, tt.id); !slices.Equal(got, tt.want) {
				t.Errorf("Mark = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if err := Check(env(nil)); err != nil {
		t.Errorf("Check without the mark = %v, want nil", err)
	}
	err := Check(env(map[string]string{Env: "abc123"}))
	if err == nil {
		t.Fatal("Check under the mark = nil, want a refusal")
	}
	if err.Code != types.ErrInvalidNetworkConfig || !strings.Contains(err.Msg, "abc123") || !strings.Contains(err.Msg, "called by braid") {
		t.Errorf("Check under the mark = %+v, want code 7 naming container abc123", err)
	}
}
