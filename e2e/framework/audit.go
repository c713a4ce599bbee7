package framework

import (
	"fmt"
	"os"
	"path/filepath"
)

// auditPolicy records every request at level Metadata (who, verb, object,
// response code; no bodies), once it is answered: RequestReceived is left
// out, so a request is one line, and a watch two (ResponseStarted, then
// ResponseComplete when it ends).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - RequestReceived
rules:
  - level: Metadata
`

// auditPolicyPath is where the policy of Options.AuditLog is written.
func (cp *ControlPlane) auditPolicyPath() string {
	return filepath.Join(cp.workDir, "audit-policy.yaml")
}

// writeAuditPolicy writes the audit policy and creates the audit log's
// directory, when Options.AuditLog asks for a log.
func (cp *ControlPlane) writeAuditPolicy() error {
	if cp.opts.AuditLog == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(cp.opts.AuditLog), 0o755); err != nil {
		return fmt.Errorf("audit log %s: %w", cp.opts.AuditLog, err)
	}
	if err := os.WriteFile(cp.auditPolicyPath(), []byte(auditPolicy), 0o644); err != nil {
		return fmt.Errorf("write audit policy %s: %w", cp.auditPolicyPath(), err)
	}
	return nil
}

// auditArgs are kube-apiserver's flags for Options.AuditLog: JSON lines,
// written before each response (blocking mode, no batching) and never
// rotated, so that a reader sees a request's line once its response is
// back and can follow the file by offset.
func (cp *ControlPlane) auditArgs() []string {
	if cp.opts.AuditLog == "" {
		return nil
	}
	return []string{
		"--audit-log-path=" + cp.opts.AuditLog,
		"--audit-policy-file=" + cp.auditPolicyPath(),
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--audit-log-maxsize=0",
		"--audit-log-maxage=0",
		"--audit-log-maxbackup=0",
	}
}
