package daemon

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestAsCNIError: a verb's error reaches the shim as skel would print it.
func TestAsCNIError(t *testing.T) {
	delegate := types.NewError(types.ErrTryAgainLater, "network ns1/blue (macvlan, net1): busy", "details")
	tests := []struct {
		name string
		err  error
		want *types.Error
	}{
		{"CNI error", delegate, delegate},
		{"wrapped CNI error", fmt.Errorf("ADD of container c1: %w", delegate), delegate},
		{"plain error", errors.New("daemon caches gone"), types.NewError(types.ErrInternal, "daemon caches gone", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := asCNIError(tt.err); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("asCNIError = %+v, want %+v", got, tt.want)
			}
		})
	}
}
