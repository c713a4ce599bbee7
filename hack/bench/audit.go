package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// auditEvent is the part of a kube-apiserver audit event (audit.k8s.io/v1,
// one JSON line) that says who asked for what.
type auditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// request names what an audited request asked for: verb and resource
// (with its subresource), or the path of a non-resource request, and the
// response code when it failed.
func (ev auditEvent) request() string {
	what := ev.RequestURI
	if ev.ObjectRef != nil {
		what = ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			what += "/" + ev.ObjectRef.Subresource
		}
	} else if path, _, ok := strings.Cut(what, "?"); ok {
		what = path
	}
	req := ev.Verb + " " + what
	if ev.ResponseStatus != nil && ev.ResponseStatus.Code >= 400 {
		req += fmt.Sprintf(" (%d)", ev.ResponseStatus.Code)
	}
	return req
}

// informer tells the informers' requests, a daemon's list and watch, from
// the ones a CNI call makes.
func (ev auditEvent) informer() bool { return ev.Verb == "list" || ev.Verb == "watch" }

// auditSize is the audit log's length now.
func auditSize(path string) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("audit log %s: %w", path, err)
	}
	return info.Size(), nil
}

// readAudit returns user's requests logged in path from offset on, each
// once: a request's last stage (ResponseComplete), or ResponseStarted for a
// watch still open.
func readAudit(path string, offset int64, user string) ([]auditEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	seen := map[string]bool{}
	var out []auditEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit log %s: line after offset %d: %w", path, offset, err)
		}
		if ev.User.Username != user || seen[ev.AuditID] {
			continue
		}
		if ev.Stage != "ResponseComplete" && ev.Stage != "ResponseStarted" {
			continue
		}
		seen[ev.AuditID] = true
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return out, nil
}
