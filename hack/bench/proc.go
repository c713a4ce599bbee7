package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// memory is a process's resident set as /proc/<pid>/status reports it, in
// bytes.
type memory struct {
	rss  int64 // VmRSS
	anon int64 // RssAnon: heap, stacks, runtime
	file int64 // RssFile: mostly the binary's own pages
	hwm  int64 // VmHWM, the peak RSS since start or the last resetPeakRSS
}

// readMemory reads VmRSS and VmHWM of process pid.
func readMemory(pid int) (memory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return memory{}, fmt.Errorf("read %s: %w", path, err)
	}
	var m memory
	fields := map[string]*int64{"VmRSS": &m.rss, "RssAnon": &m.anon, "RssFile": &m.file, "VmHWM": &m.hwm}
	for line := range strings.Lines(string(data)) {
		key, value, _ := strings.Cut(line, ":")
		field, ok := fields[key]
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse %s in %s: %w", key, path, err)
		}
		*field = kb << 10
	}
	if m.rss == 0 {
		return memory{}, fmt.Errorf("no VmRSS in %s", path)
	}
	return m, nil
}

// resetPeakRSS sets process pid's VmHWM back to its current RSS (Linux 4.0
// and later), so that the next readMemory reports the peak from now on.
func resetPeakRSS(pid int) error {
	path := fmt.Sprintf("/proc/%d/clear_refs", pid)
	if err := os.WriteFile(path, []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS through %s: %w", path, err)
	}
	return nil
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// scrape reads the named metrics from the text exposition at
// http://addr/metrics: a name with labels ({...}, as the page writes them)
// is that one series, a bare name the sum of its series; a name the page
// lacks is missing from the map.
func scrape(ctx context.Context, addr string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + addr + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		name, _, _ := strings.Cut(series, "{")
		key := series // a name with its labels: that one series
		if !slices.Contains(names, key) {
			key = name // a bare name: the sum of its series
		}
		if !ok || !slices.Contains(names, key) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: metric %s: %w", url, series, err)
		}
		out[key] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return out, nil
}
