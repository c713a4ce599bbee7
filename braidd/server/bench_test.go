package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/braid-cni/braid/wire"
)

// BenchmarkServeAdd is braidd's own share of a thick ADD and DEL: the shim's
// framed call over the socket, the plan, the journal, the merge and the
// answer, with delegates that answer at once (the fake exec).
func BenchmarkServeAdd(b *testing.B) {
	e := newEnv(b)
	e.serve(b, &Server{Settings: e.settings, Core: e.core, Timeout: e.timeout})
	b.ReportAllocs()
	for i := range b.N {
		args := e.args(fmt.Sprintf("c%d", i))
		for _, command := range []string{"ADD", "DEL"} {
			resp, err := wire.Forward(context.Background(), e.sock(), wire.NewRequest(command, args))
			if err != nil || resp.Error != nil {
				b.Fatalf("%s: %v %+v", command, err, resp)
			}
		}
	}
}
