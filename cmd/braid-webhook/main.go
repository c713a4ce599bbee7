// Command braid-webhook is braid's admission webhook
// (deployments/webhook.yaml): it refuses NetworkAttachmentDefinitions and
// pods the plugin would refuse, when they are created, and with
// --inject-resources (deployments/webhook-inject.yaml) makes pods request
// the devices their device-backed networks need.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/braid-cni/braid/kube"
	"github.com/braid-cni/braid/netconf"
	"github.com/braid-cni/braid/webhook"
)

func main() {
	var cfg webhook.Config
	flag.StringVar(&cfg.Addr, "addr", ":8443", "HTTPS listen address")
	flag.StringVar(&cfg.CertFile, "tls-cert-file", "", "serving certificate (PEM), re-read when it changes")
	flag.StringVar(&cfg.KeyFile, "tls-key-file", "", "serving key (PEM)")
	flag.BoolVar(&cfg.SelfSigned, "self-signed", false, "generate a CA and serving certificate and patch the CA into --webhook-config")
	flag.StringVar(&cfg.WebhookConfig, "webhook-config", "", "ValidatingWebhookConfiguration whose caBundle to patch (--self-signed)")
	flag.StringVar(&cfg.Service, "service", "", "the webhook's Service name (--self-signed)")
	flag.StringVar(&cfg.Namespace, "namespace", "", "the webhook's namespace (--self-signed)")
	flag.StringVar(&cfg.CASecret, "ca-secret", "", "existing Secret in --namespace that keeps the CA, shared by every replica; filled when empty, never created (--self-signed)")
	flag.Func("host", "another DNS name or IP address for the self-signed certificate (repeatable)", func(s string) error {
		cfg.Hosts = append(cfg.Hosts, s)
		return nil
	})
	flag.StringVar(&cfg.MutatingWebhookConfig, "mutating-webhook-config", "", "MutatingWebhookConfiguration of /inject whose caBundle to keep once it exists (--self-signed)")
	flag.BoolVar(&cfg.InjectResources, "inject-resources", false, "serve /inject: add the device requests of device-backed networks to pods (reads NADs)")
	flag.IntVar(&cfg.MaxNetworksPerPod, "max-networks-per-pod", netconf.DefaultMaxNetworksPerPod, "refuse pods naming more networks: braid's maxNetworksPerPod on the nodes")
	flag.BoolVar(&cfg.NamespaceIsolation, "namespace-isolation", false, "as braid's namespaceIsolation: a pod may use the NADs of its own namespace and of --global-namespaces only; /inject reads no others")
	flag.StringVar(&cfg.GlobalNamespaces, "global-namespaces", "", "as braid's globalNamespaces: comma-separated namespaces whose NADs every pod may use under --namespace-isolation (unset: default)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig (default: in-cluster)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "braid-webhook:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg webhook.Config, kubeconfig string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if !cfg.SelfSigned && !cfg.InjectResources {
		return webhook.Run(ctx, cfg, nil, nil, log)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("API config (kubeconfig %q, empty: in-cluster): %w", kubeconfig, err)
	}
	clients, err := kube.FromConfig(rc, 0)
	if err != nil {
		return fmt.Errorf("API client: %w", err)
	}
	return webhook.Run(ctx, cfg, clients.Core, clients, log)
}
