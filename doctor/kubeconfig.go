package doctor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/netconf"
)

const nameKubeconfig = "kubeconfig"

// expirySoon is how close a token's expiry is before it is a warning.
const expirySoon = time.Hour

func clientsFor(path string, timeout time.Duration) (*kube.Clients, error) {
	return kube.FromKubeconfig(path, timeout)
}

// CheckKubeconfig checks the config's kubeconfig: readable, loads, the API
// server answers an authenticated request and lets braid read pods and
// NADs, and its token is not expired (nor about to be).
func CheckKubeconfig(ctx context.Context, conf *netconf.NetConf, o Options) Result {
	path := conf.Kubeconfig
	if path == "" {
		if conf.DaemonSocketDir != "" {
			return ok(nameKubeconfig, "none in the shim's config: braidd reads the API server")
		}
		return warn(nameKubeconfig, "no kubeconfig key: braid attaches the cluster network only and ignores pods' networks annotations",
			"set kubeconfig in braid's config to a kubeconfig for braid's service account")
	}
	if _, err := os.ReadFile(path); err != nil {
		return fail(nameKubeconfig, fmt.Sprintf("read %s: %v", path, err), "create "+path+" (braid-install writes it from the service account)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return fail(nameKubeconfig, fmt.Sprintf("load %s: %v", path, err), "correct or rewrite "+path)
	}
	token, err := bearerToken(cfg.BearerToken, cfg.BearerTokenFile)
	if err != nil {
		return fail(nameKubeconfig, fmt.Sprintf("%s: %v", path, err), "create the token file "+path+" names")
	}
	expiry := tokenExpiry(path, token, o.now())
	if expiry.Status == Fail {
		return expiry
	}
	clients, err := clientsFor(path, o.timeout())
	if err != nil {
		return fail(nameKubeconfig, err.Error(), "correct or rewrite "+path)
	}
	if r := checkAccess(ctx, clients, conf, path, o.timeout()); r.Status != OK {
		return r
	}
	if expiry.Status == Warn {
		return expiry
	}
	return ok(nameKubeconfig, fmt.Sprintf("%s: API server %s answers, braid may read pods and NADs; %s", path, cfg.Host, expiry.Detail))
}

func bearerToken(token, file string) (string, error) {
	if token != "" || file == "" {
		return token, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// tokenExpiry reads the token's expiry: ok with the time, warn within
// expirySoon, fail when past. A token that is not a JWT, or a JWT without
// exp, does not expire as far as braid can tell.
func tokenExpiry(path, token string, now time.Time) Result {
	if token == "" {
		return ok(nameKubeconfig, "no bearer token (client certificate or other credentials)")
	}
	exp, err := JWTExpiry(token)
	switch {
	case errors.Is(err, errNoExpiry):
		return ok(nameKubeconfig, "token has no expiry")
	case err != nil:
		return ok(nameKubeconfig, "token is not a JWT; its expiry is unknown")
	}
	fix := "refresh " + path + " with a new token (restart braid-install, or braidd's pod)"
	at := exp.UTC().Format(time.RFC3339)
	switch left := exp.Sub(now); {
	case left <= 0:
		return fail(nameKubeconfig, fmt.Sprintf("%s: token expired at %s", path, at), fix)
	case left < expirySoon:
		return warn(nameKubeconfig, fmt.Sprintf("%s: token expires at %s, in %s", path, at, left.Round(time.Second)), fix)
	}
	return ok(nameKubeconfig, "token expires at "+at)
}

var errNoExpiry = errors.New("JWT has no exp claim")

// JWTExpiry decodes the exp claim of a JWT without verifying its signature:
// the API server verifies; doctor only says when it will stop accepting it.
func JWTExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, fmt.Errorf("decode JWT payload: %w", err)
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, fmt.Errorf("decode JWT claims: %w", err)
	}
	if claims.Exp == nil {
		return time.Time{}, errNoExpiry
	}
	secs, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, fmt.Errorf("JWT exp %q: %w", claims.Exp.String(), err)
	}
	return time.Unix(int64(secs), 0), nil
}

// checkAccess asks the API server whether braid may do what it does: an
// authenticated request that fails on bad credentials, and tells whether
// RBAC lets braid read pods and NADs.
func checkAccess(ctx context.Context, clients *kube.Clients, conf *netconf.NetConf, path string, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var denied []string
	for _, attr := range []authzv1.ResourceAttributes{
		{Verb: "get", Resource: "pods"},
		{Verb: "get", Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions", Namespace: conf.MultusNamespace},
	} {
		review := &authzv1.SelfSubjectAccessReview{Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attr}}
		got, err := clients.Core.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			return fail(nameKubeconfig, fmt.Sprintf("%s: API server request failed: %v", path, err),
				"check the API server address and the credentials in "+path)
		}
		if !got.Status.Allowed {
			denied = append(denied, attr.Verb+" "+attr.Resource)
		}
	}
	if len(denied) > 0 {
		return warn(nameKubeconfig, fmt.Sprintf("%s: the API server answers but denies %s", path, strings.Join(denied, ", ")),
			"bind braid's service account to its ClusterRole (deployments/rbac.yaml)")
	}
	return ok(nameKubeconfig, "")
}
