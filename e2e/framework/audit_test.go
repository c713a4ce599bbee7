package framework

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestAuditLog asks for an audit log and finds in it, by the time the
// response is back, the line of a request made as BraidUser.
func TestAuditLog(t *testing.T) {
	RequireTools(t)
	dir := t.TempDir()
	auditLog := filepath.Join(dir, "audit", "audit.log")
	cp, err := StartControlPlane(t.Context(), Options{WorkDir: filepath.Join(dir, "cp"), AuditLog: auditLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	kc, err := kubernetes.NewForConfig(cp.BraidConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Forbidden (no RBAC applied) or not found: logged either way.
	_, _ = kc.CoreV1().Pods("default").Get(t.Context(), "audited", metav1.GetOptions{})

	f, err := os.Open(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct {
			Verb      string `json:"verb"`
			User      struct{ Username string }
			ObjectRef struct{ Resource, Name string }
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if ev.User.Username == BraidUser && ev.Verb == "get" && ev.ObjectRef.Resource == "pods" && ev.ObjectRef.Name == "audited" {
			return
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Errorf("no audit line for %s's get of pod default/audited in %s", BraidUser, auditLog)
}
