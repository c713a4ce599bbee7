package attacher

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/braid-cni/braid/internal/testutil"
)

// TestAddParallel: with Parallel, the cluster network is attached first and
// the others at once; the result is the same as a sequential ADD's, and a
// failure still rolls every attachment back in reverse order.
func TestAddParallel(t *testing.T) {
	seq := newFixture(t)
	want, err := seq.attacher.addPlan(context.Background(), testPlan("c1", "1.0.0"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}

	f := newFixture(t)
	f.attacher.Parallel = true
	got, err := f.attacher.addPlan(context.Background(), testPlan("c1", "1.0.0"), "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	calls := f.invoker.seen()
	if len(calls) < 3 || calls[0] != "ADD cluster eth0" {
		t.Fatalf("calls = %q, want the cluster network's ADD first", calls)
	}
	adds := slices.Clone(calls[:3])
	sort.Strings(adds)
	wantAdds := slices.Clone(allAdds)
	sort.Strings(wantAdds)
	if !slices.Equal(adds, wantAdds) {
		t.Errorf("ADDs = %q, want %q in any order after the cluster's", calls[:3], allAdds)
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("parallel result\n%s\nwant the sequential one\n%s", g, w)
	}

	t.Run("failure", func(t *testing.T) {
		f := newFixture(t)
		f.attacher.Parallel = true
		f.invoker.fail["ADD blue"] = delegateError("bridge", types.ErrTryAgainLater, "bridge busy")
		_, err := f.attacher.addPlan(context.Background(), testPlan("c2", "1.0.0"), "1.0.0")
		te := testutil.CNIError(t, err)
		if te.Code != types.ErrTryAgainLater || !strings.Contains(te.Msg, "ns1/blue") {
			t.Errorf("error = %v, want blue's code 11", te)
		}
		calls := f.invoker.seen()
		if got := calls[len(calls)-3:]; !slices.Equal(got, allDels) {
			t.Errorf("rollback = %q, want %q", got, allDels)
		}
		f.assertNoJournal(t, "c2")
	})
}
