package testutil

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// SpecVersions are the CNI spec versions a version-dependent test runs
// through, in one loop: the ones braid's results come in that libcni's
// runtimes ask for.
func SpecVersions() []string { return []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} }

// CNIError fails the test unless err holds a *types.Error (what skel
// prints), and returns it.
func CNIError(t testing.TB, err error) *types.Error {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want a *types.Error")
	}
	var te *types.Error
	if !errors.As(err, &te) {
		t.Fatalf("err = %T %v, want a *types.Error", err, err)
	}
	return te
}

// WantCNIError fails the test unless err holds a *types.Error with code
// whose message contains every one of parts, and returns it.
func WantCNIError(t testing.TB, err error, code uint, parts ...string) *types.Error {
	t.Helper()
	te := CNIError(t, err)
	if te.Code != code {
		t.Errorf("code %d, want %d (msg %q)", te.Code, code, te.Msg)
	}
	for _, p := range parts {
		if !strings.Contains(te.Msg, p) {
			t.Errorf("message %q does not contain %q", te.Msg, p)
		}
	}
	return te
}
