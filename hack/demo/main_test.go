package main

import "testing"

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr bool
	}{
		{args: []string{"up"}},
		{args: []string{"up", "-mode", "thin"}},
		{args: []string{"up", "-mode=thick"}},
		{args: []string{"down"}},
		{args: nil, wantErr: true},
		{args: []string{"sideways"}, wantErr: true},
		{args: []string{"up", "-mode", "thinner"}, wantErr: true},
		{args: []string{"up", "thin"}, wantErr: true},
		{args: []string{"down", "-mode", "thin"}, wantErr: true},
	}
	for _, tt := range tests {
		verb, err := parseArgs(tt.args)
		if (err != nil) != tt.wantErr || (verb == nil) != tt.wantErr {
			t.Errorf("parseArgs(%q) = verb %v, error %v; want error %v", tt.args, verb != nil, err, tt.wantErr)
		}
	}
}
