package doctor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFile writes v (bytes, a string or JSON of anything else) to path.
func writeFile(t *testing.T, path string, v any) {
	t.Helper()
	var data []byte
	switch v := v.(type) {
	case string:
		data = []byte(v)
	case []byte:
		data = v
	default:
		var err error
		if data, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakePlugin writes a shell-script plugin that answers VERSION with
// versions and succeeds at every other verb.
func fakePlugin(t *testing.T, dir, name string, versions ...string) {
	t.Helper()
	quoted := make([]string, len(versions))
	for i, v := range versions {
		quoted[i] = `"` + v + `"`
	}
	script := "#!/bin/sh\n" +
		"if [ \"$CNI_COMMAND\" = VERSION ]; then\n" +
		"  echo '{\"cniVersion\":\"" + versions[len(versions)-1] + "\",\"supportedVersions\":[" + strings.Join(quoted, ",") + "]}'\n" +
		"fi\n" +
		"exit 0\n"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// braidList is a runtime config list holding braid with extra keys.
func braidList(keys map[string]any) map[string]any {
	plugin := map[string]any{"type": "braid"}
	for k, v := range keys {
		plugin[k] = v
	}
	return map[string]any{"cniVersion": "1.0.0", "name": "braid-net", "plugins": []any{plugin}}
}

// bridgeList is a non-braid config list.
func bridgeList(name string) map[string]any {
	return map[string]any{"cniVersion": "1.0.0", "name": name, "plugins": []any{map[string]any{"type": "bridge"}}}
}
