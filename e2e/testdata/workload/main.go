// Command workload is the e2e node tier's test container: it reports the
// pod's interfaces over HTTP (GET /interfaces on :8080, JSON) and on stdout,
// and exits on SIGTERM. GET /dial?addr=IP:PORT fetches /interfaces of
// another pod from inside this one, so a test can prove that two pods talk
// over a given network. The kernel answers pings.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Interface is one network interface of the pod.
type Interface struct {
	Name  string   `json:"name"`
	MAC   string   `json:"mac"`
	MTU   int      `json:"mtu"`
	Addrs []string `json:"addrs"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if ifs, err := interfaces(); err == nil {
		_ = json.NewEncoder(os.Stdout).Encode(ifs)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /interfaces", func(w http.ResponseWriter, _ *http.Request) {
		ifs, err := interfaces()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ifs)
	})
	mux.HandleFunc("GET /dial", dial)
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "workload:", err)
		os.Exit(1)
	}
}

func interfaces() ([]Interface, error) {
	list, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Interface
	for _, i := range list {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := i.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", i.Name, err)
		}
		ifc := Interface{Name: i.Name, MAC: i.HardwareAddr.String(), MTU: i.MTU, Addrs: []string{}}
		for _, a := range addrs {
			ifc.Addrs = append(ifc.Addrs, a.String())
		}
		out = append(out, ifc)
	}
	return out, nil
}

// dial fetches another workload's /interfaces from inside this pod.
func dial(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("addr")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		http.Error(w, "addr must be IP:PORT: "+err.Error(), http.StatusBadRequest)
		return
	}
	// A new connection each time: a pooled one may be bound to an address
	// on an interface that hot-plug has removed since.
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/interfaces")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
