package annotations

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseNetworks checks properties that must hold for any annotation:
// parsing and validating never panic, Validate reports only *FieldErrors,
// and a list that parses and validates survives a trip through JSON intact.
func FuzzParseNetworks(f *testing.F) {
	seeds := []struct{ raw, namespace string }{
		{"", "default"},
		{"foo", "default"},
		{"ns/foo@net1, bar , baz@net2", "default"},
		{"a,,b", "default"},
		{"a/b/c@d@e", "default"},
		{"foo@lo", ""},
		{`{"name":"foo"}`, "default"},
		{`[]`, "default"},
		{`[null, 1, "x"]`, "default"},
		{`[{"name":"foo","interface":"net1","deviceID":"0000:03:00.1"}]`, "default"},
		{`[{"name":"a","ips":[],"default-route":["10.0.0.1"]},{"name":"b","default-route":["10.0.0.2"]}]`, "ns"},
		{`[{"name":"a","portMappings":[null,{"hostPort":1,"containerPort":2,"protocol":"UDP"}]}]`, "ns"},
		{`[{"name":"a","cni-args":{"k":[1.5e300,-0,null,{"x":"\u2028"}]},"bandwidth":{}}]`, "ns"},
		{fullJSON, "default"},
	}
	for _, s := range seeds {
		f.Add(s.raw, s.namespace)
	}
	f.Fuzz(func(t *testing.T, raw, namespace string) {
		sels, err := ParseNetworks(raw, namespace)
		if err != nil {
			if sels != nil {
				t.Fatalf("ParseNetworks(%q) returned %d selections with error %v", raw, len(sels), err)
			}
			return
		}
		for i, sel := range sels {
			if sel == nil {
				t.Fatalf("ParseNetworks(%q): element %d is nil", raw, i+1)
			}
		}
		verr := Validate(sels, "eth0")
		if verr != nil {
			checkAllFieldErrors(t, verr)
			return
		}
		if len(sels) == 0 {
			return
		}
		b, err := json.Marshal(sels)
		if err != nil {
			t.Fatalf("Marshal(ParseNetworks(%q)): %v", raw, err)
		}
		again, err := ParseNetworks(string(b), namespace)
		if err != nil {
			t.Fatalf("re-parse of %s (from %q): %v", b, raw, err)
		}
		if !reflect.DeepEqual(again, sels) {
			t.Fatalf("round trip of %q through %s changed the list", raw, b)
		}
	})
}

// checkAllFieldErrors fails unless every error joined in err is a *FieldError.
func checkAllFieldErrors(t *testing.T, err error) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate error %T is not joined: %v", err, err)
	}
	errs := joined.Unwrap()
	if len(errs) > maxReported+1 {
		t.Fatalf("Validate returned %d errors, more than %d and a count", len(errs), maxReported)
	}
	if len(errs) == maxReported+1 {
		if last := errs[maxReported].Error(); !strings.HasPrefix(last, "and ") || !strings.HasSuffix(last, " more problems") {
			t.Fatalf("Validate's error %d is %q, want the count of the rest", maxReported+1, last)
		}
		errs = errs[:maxReported]
	}
	for _, e := range errs {
		var fe *FieldError
		if !errors.As(e, &fe) || fe.Index < 1 || fe.Field == "" || fe.Reason == "" {
			t.Fatalf("Validate returned %T %q, want a complete *FieldError", e, e)
		}
	}
}
