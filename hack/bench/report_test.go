package main

import (
	"testing"
	"time"
)

func TestAgainstMultus(t *testing.T) {
	durations := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	results := []result{
		{n: 0, mode: modeFloor, add: durations(30, 30, 30)},
		{n: 0, mode: modeThin, add: durations(80, 90, 100)},     // +60 over the floor
		{n: 0, mode: modeMultus, add: durations(120, 140, 130)}, // +100
		{n: 4, mode: modeFloor, add: durations(100, 100, 100)},
		{n: 4, mode: modeThin, add: durations(150, 140, 160)},   // +50
		{n: 4, mode: modeMultus, add: durations(210, 190, 200)}, // +100
		{n: 8, mode: modeFloor, add: durations(200, 200, 200)},
		{n: 8, mode: modeThin, add: durations(210, 210, 210)},
		{n: 8, mode: modeMultus, add: durations(190, 200, 195)}, // not above the floor
		{n: 16, mode: modeFloor, add: durations(300, 300, 300)},
		{n: 16, mode: modeThin, add: durations(310, 310, 310)}, // no multus at this N
	}
	tests := []struct {
		n      int
		ratio  float64
		met    bool
		slower int
	}{
		{n: 0, ratio: 0.6, met: true, slower: 0},
		{n: 4, ratio: 0.5, met: true, slower: 0},
		{n: 8, ratio: 0, met: false, slower: 3},
	}
	got := againstMultus(results)
	if len(got) != len(tests) {
		t.Fatalf("againstMultus: %d Ns, want %d: %+v", len(got), len(tests), got)
	}
	for i, tt := range tests {
		o := got[i]
		if o.n != tt.n || o.ratio < tt.ratio-1e-9 || o.ratio > tt.ratio+1e-9 || o.met() != tt.met || o.add.slower != tt.slower {
			t.Errorf("N=%d: got n=%d ratio %.3f met %v slower %d, want ratio %.3f met %v slower %d",
				tt.n, o.n, o.ratio, o.met(), o.add.slower, tt.ratio, tt.met, tt.slower)
		}
	}
}
