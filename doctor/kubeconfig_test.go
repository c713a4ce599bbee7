package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/braid-cni/braid/netconf"
)

// jwt builds an unsigned token with claims.
func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(payload) + "." + enc([]byte("signature"))
}

func TestJWTExpiry(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	got, err := JWTExpiry(jwt(t, map[string]any{"exp": exp.Unix(), "sub": "system:serviceaccount:kube-system:braid"}))
	if err != nil || !got.Equal(exp) {
		t.Errorf("JWTExpiry = %v, %v; want %v", got, err, exp)
	}
	for _, bad := range []string{"opaque-token", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[]")) + ".c"} {
		if _, err := JWTExpiry(bad); err == nil {
			t.Errorf("JWTExpiry(%q): no error", bad)
		}
	}
}

func TestTokenExpiry(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		token      string
		want       Status
		wantDetail string
	}{
		{"valid for a day", jwt(t, map[string]any{"exp": now.Add(24 * time.Hour).Unix()}), OK, "expires at 2026-11-22T12:00:00Z"},
		{"expires within the hour", jwt(t, map[string]any{"exp": now.Add(30 * time.Minute).Unix()}), Warn, "in 30m0s"},
		{"expired", jwt(t, map[string]any{"exp": now.Add(-time.Minute).Unix()}), Fail, "expired at 2026-11-21T11:59:00Z"},
		{"no exp", jwt(t, map[string]any{"sub": "x"}), OK, "no expiry"},
		{"not a JWT", "0123456789abcdef", OK, "not a JWT"},
		{"no token", "", OK, "no bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tokenExpiry("kc", tt.token, now)
			if got.Status != tt.want || !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("tokenExpiry = %+v, want %s containing %q", got, tt.want, tt.wantDetail)
			}
		})
	}
}

// apiServer (TLS: client-go sends credentials over TLS only) answers SelfSubjectAccessReviews with allowed, or with status
// code when it is not 200.
func apiServer(t *testing.T, code int, allowed bool, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" {
			http.NotFound(w, r)
			return
		}
		if code != http.StatusOK {
			http.Error(w, "{}", code)
			return
		}
		review := map[string]any{
			"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
			"status": map[string]any{"allowed": allowed},
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func kubeconfigFile(t *testing.T, server, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "braid.kubeconfig")
	writeFile(t, path, fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`, server, token))
	return path
}

func TestCheckKubeconfig(t *testing.T) {
	now := time.Now()
	good := jwt(t, map[string]any{"exp": now.Add(48 * time.Hour).Unix()})
	soon := jwt(t, map[string]any{"exp": now.Add(10 * time.Minute).Unix()})
	expired := jwt(t, map[string]any{"exp": now.Add(-time.Hour).Unix()})
	tests := []struct {
		name       string
		kubeconfig func(t *testing.T) string
		thick      bool
		want       Status
		wantDetail string
	}{
		{
			name:       "usable",
			kubeconfig: func(t *testing.T) string { return kubeconfigFile(t, apiServer(t, 200, true, good).URL, good) },
			want:       OK, wantDetail: "braid may read pods and NADs; token expires at",
		},
		{
			name:       "token expires soon",
			kubeconfig: func(t *testing.T) string { return kubeconfigFile(t, apiServer(t, 200, true, soon).URL, soon) },
			want:       Warn, wantDetail: "token expires at",
		},
		{
			name:       "token expired",
			kubeconfig: func(t *testing.T) string { return kubeconfigFile(t, apiServer(t, 200, true, expired).URL, expired) },
			want:       Fail, wantDetail: "token expired at",
		},
		{
			name:       "RBAC denies",
			kubeconfig: func(t *testing.T) string { return kubeconfigFile(t, apiServer(t, 200, false, good).URL, good) },
			want:       Warn, wantDetail: "denies get pods, get network-attachment-definitions",
		},
		{
			name:       "credentials refused",
			kubeconfig: func(t *testing.T) string { return kubeconfigFile(t, apiServer(t, 200, true, "other").URL, good) },
			want:       Fail, wantDetail: "API server request failed",
		},
		{
			name:       "missing file",
			kubeconfig: func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") },
			want:       Fail, wantDetail: "read ",
		},
		{
			name: "not a kubeconfig",
			kubeconfig: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "kc")
				writeFile(t, p, "{{{")
				return p
			},
			want: Fail, wantDetail: "load ",
		},
		{name: "none, thin", kubeconfig: func(*testing.T) string { return "" }, want: Warn, wantDetail: "cluster network only"},
		{name: "none, thick", kubeconfig: func(*testing.T) string { return "" }, thick: true, want: OK, wantDetail: "braidd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := &netconf.NetConf{Kubeconfig: tt.kubeconfig(t), MultusNamespace: "kube-system"}
			if tt.thick {
				conf.DaemonSocketDir = "/run/braid"
			}
			got := CheckKubeconfig(context.Background(), conf, Options{Timeout: 5 * time.Second})
			if got.Status != tt.want || !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("CheckKubeconfig = %+v, want %s containing %q", got, tt.want, tt.wantDetail)
			}
			if got.Status != OK && got.Fix == "" {
				t.Errorf("no fix in %+v", got)
			}
		})
	}
}
