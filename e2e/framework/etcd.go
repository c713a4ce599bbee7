package framework

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// etcdConfig is one single-member etcd cluster on 127.0.0.1.
type etcdConfig struct {
	path       string
	dataDir    string
	logPath    string
	clientPort int
	peerPort   int
	detach     bool // see Options.Detach
}

func (c etcdConfig) clientURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.clientPort)
}

func (c etcdConfig) args() []string {
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.peerPort)
	return []string{
		c.path,
		"--name=braid-e2e",
		"--data-dir=" + c.dataDir,
		"--listen-client-urls=" + c.clientURL(),
		"--advertise-client-urls=" + c.clientURL(),
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=braid-e2e=" + peerURL,
		"--initial-cluster-state=new",
		"--logger=zap",
	}
}

// startEtcd starts etcd and waits until /health reports healthy.
func startEtcd(ctx context.Context, c etcdConfig) (*process, error) {
	p, err := startProcess("etcd", c.logPath, c.args(), procOptions{detach: c.detach})
	if err != nil {
		return nil, err
	}
	httpClient := &http.Client{Timeout: 2 * time.Second}
	healthURL := c.clientURL() + "/health"
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("etcd exited")
		}
		lastErr = etcdHealthy(ctx, httpClient, healthURL)
		return lastErr == nil, nil
	})
	if err != nil {
		stopErr := p.stop(time.Second)
		return nil, fmt.Errorf("wait for etcd at %s: %w (last check: %v; stop: %v); last lines of %s:\n%s",
			c.clientURL(), err, lastErr, stopErr, filepath.Base(c.logPath), p.tail(30))
	}
	return p, nil
}

func etcdHealthy(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"true"`) {
		return fmt.Errorf("etcd health %d: %s", resp.StatusCode, body)
	}
	return nil
}
