package testutil

import (
	"bytes"
	"encoding/json"
	"testing"
)

// JSON renders v as JSON, failing the test when it cannot: for comparing
// and printing values as the wire would carry them.
func JSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T as JSON: %v", v, err)
	}
	return string(data)
}

// Compact returns data without insignificant whitespace, failing the test
// when data is not JSON.
func Compact(t testing.TB, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return buf.String()
}

// Decode reads JSON keeping numbers as their text, so that 1 and 1.0, or a
// large integer and its rounding, do not compare equal.
func Decode(t testing.TB, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return v
}
