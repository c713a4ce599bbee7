package testutil

import (
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
