package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
)

// Config is how braid-webhook serves: its flags.
type Config struct {
	Addr string // listen address, e.g. ":8443"
	// CertFile and KeyFile: a serving certificate someone else issues
	// (cert-manager); re-read when they change.
	CertFile, KeyFile string
	// SelfSigned: make a CA and a serving certificate at start and put the
	// CA into the caBundle of WebhookConfig.
	SelfSigned    bool
	WebhookConfig string // ValidatingWebhookConfiguration name
	// MutatingWebhookConfig names the MutatingWebhookConfiguration of
	// /inject whose caBundle is kept too, once it exists (SelfSigned).
	MutatingWebhookConfig string
	// InjectResources serves /inject: pods get resource requests for the
	// devices their device-backed networks need. It reads NADs.
	InjectResources bool
	// NamespaceIsolation and GlobalNamespaces are braid's settings of the
	// same names (netconf.NetConf): with isolation /inject reads only the
	// NADs a pod may use, those of its own namespace and the global ones.
	NamespaceIsolation bool
	GlobalNamespaces   string // comma-separated; unset: "default"
	Service            string // Service name; the certificate is for <service>.<namespace>.svc
	Namespace          string
	Hosts              []string // more names or IPs for the certificate
	// CASecret, when set, keeps the CA in that Secret of Namespace so
	// every replica serves under the one CA the caBundle holds. The Secret
	// must exist (deployments/webhook.yaml ships it empty); see SharedCA.
	CASecret string
	// MaxNetworksPerPod is braid's maxNetworksPerPod on the nodes: pods
	// naming more networks are refused. 0: braid's default.
	MaxNetworksPerPod int
}

// patchTimeout bounds the wait for the ValidatingWebhookConfiguration
// (applied with the Deployment, it may come a moment later).
const patchTimeout = 2 * time.Minute

// Run serves /validate, /inject with InjectResources (and /healthz) over
// HTTPS until ctx ends. client is needed with SelfSigned, nads with
// InjectResources.
func Run(ctx context.Context, cfg Config, client kubernetes.Interface, nads nad.Getter, log *slog.Logger) error {
	tlsConf, err := serverTLS(ctx, cfg, client, log)
	if err != nil {
		return err
	}
	// The settings of braid on the nodes that decide what it refuses.
	braid := &netconf.NetConf{
		NamespaceIsolation: cfg.NamespaceIsolation,
		GlobalNamespaces:   cfg.GlobalNamespaces,
		MaxNetworksPerPod:  cfg.MaxNetworksPerPod,
	}
	mux := http.NewServeMux()
	mux.Handle("/validate", &Handler{Log: log, Braid: braid})
	if cfg.InjectResources {
		if nads == nil {
			return errors.New("--inject-resources needs API access to read NetworkAttachmentDefinitions")
		}
		mux.Handle("/inject", &Injector{NADs: nads, Log: log, Namespaces: braid})
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           mux,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Info("serving", "addr", ln.Addr().String())
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", cfg.Addr, err)
	}
	return nil
}

// serverTLS sets up the serving certificate: from files, or self-signed
// with the CA published in the caBundle.
func serverTLS(ctx context.Context, cfg Config, client kubernetes.Interface, log *slog.Logger) (*tls.Config, error) {
	switch {
	case cfg.CertFile != "" || cfg.KeyFile != "":
		if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.SelfSigned {
			return nil, errors.New("--tls-cert-file and --tls-key-file go together, and without --self-signed")
		}
		r := &keyPairReloader{certFile: cfg.CertFile, keyFile: cfg.KeyFile}
		if _, err := r.get(nil); err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, nil
	case cfg.SelfSigned:
		cert, err := selfSigned(ctx, cfg, client, log)
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}, nil
	}
	return nil, errors.New("no serving certificate: give --tls-cert-file and --tls-key-file, or --self-signed")
}

func selfSigned(ctx context.Context, cfg Config, client kubernetes.Interface, log *slog.Logger) (*tls.Certificate, error) {
	if cfg.WebhookConfig == "" || cfg.Service == "" || cfg.Namespace == "" || client == nil {
		return nil, errors.New("--self-signed needs --webhook-config, --service, --namespace and API access")
	}
	now := time.Now()
	var ca *CA
	var err error
	if cfg.CASecret != "" {
		ca, err = SharedCA(ctx, client, cfg.Namespace, cfg.CASecret, now)
	} else {
		ca, err = NewCA(now)
	}
	if err != nil {
		return nil, err
	}
	svc := cfg.Service + "." + cfg.Namespace + ".svc"
	cert, err := ca.Serving(append([]string{svc, svc + ".cluster.local"}, cfg.Hosts...), now)
	if err != nil {
		return nil, err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, time.Second, patchTimeout, true, func(ctx context.Context) (bool, error) {
		_, last = PatchCABundle(ctx, client, Validating, cfg.WebhookConfig, ca.CertPEM)
		if last != nil {
			log.Info("caBundle not patched yet; retrying", "error", last)
		}
		return last == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("publish the CA: %w (last: %v)", err, last)
	}
	log.Info("caBundle patched", "webhookConfiguration", cfg.WebhookConfig, "caExpires", ca.Cert.NotAfter)
	go keepCABundles(ctx, client, cfg, ca.CertPEM, log)
	return cert, nil
}

// caBundleCheck is how often the caBundles are checked.
const caBundleCheck = 30 * time.Second

// keepCABundles puts the CA back into the webhook configurations until ctx
// ends: re-applying a manifest empties caBundle, and the mutating
// configuration may be applied after the webhook started.
func keepCABundles(ctx context.Context, client kubernetes.Interface, cfg Config, caPEM []byte, log *slog.Logger) {
	targets := [][2]string{{Validating, cfg.WebhookConfig}}
	if cfg.MutatingWebhookConfig != "" {
		targets = append(targets, [2]string{Mutating, cfg.MutatingWebhookConfig})
	}
	check := func(ctx context.Context) {
		for _, t := range targets {
			patched, err := PatchCABundle(ctx, client, t[0], t[1], caPEM)
			switch {
			case apierrors.IsNotFound(err):
				// Not applied (yet): nothing to keep.
			case err != nil:
				log.Warn("caBundle not checked", "kind", t[0], "name", t[1], "error", err)
			case patched:
				log.Info("caBundle patched", "kind", t[0], "name", t[1])
			}
		}
	}
	wait.UntilWithContext(ctx, check, caBundleCheck) // checks at once, then every caBundleCheck
}

// keyPairReloader serves the key pair from files and re-reads them when
// the certificate file changes (cert-manager renews in place).
type keyPairReloader struct {
	certFile, keyFile string
	mu                sync.Mutex
	modTime           time.Time
	cert              *tls.Certificate
}

func (r *keyPairReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	st, err := os.Stat(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("serving certificate %s: %w", r.certFile, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && st.ModTime().Equal(r.modTime) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // mid-rotation: keep the old pair
		}
		return nil, fmt.Errorf("load serving key pair %s, %s: %w", r.certFile, r.keyFile, err)
	}
	r.cert, r.modTime = &cert, st.ModTime()
	return r.cert, nil
}
