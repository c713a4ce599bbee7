package lint

import (
	"fmt"
	"io"
	"sort"
)

// Severity says how bad a finding is. Only errors fail a lint run.
type Severity string

// Severities, most serious first.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Finding is one problem in one object of one file.
type Finding struct {
	File     string   `json:"file"`
	Kind     string   `json:"kind"`
	Object   string   `json:"object"` // "namespace/name"
	Field    string   `json:"field"`  // a JSON path into the object
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`

	fileIndex, doc, seq int // sort keys: argument order, document order, check order
}

// String is the one-line form: "FILE: KIND NAMESPACE/NAME: FIELD: SEVERITY: MESSAGE".
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s %s: %s: %s: %s", f.File, f.Kind, f.Object, f.Field, f.Severity, f.Message)
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == Error {
			return true
		}
	}
	return false
}

// WriteText writes one line per finding.
func WriteText(w io.Writer, fs []Finding) error {
	for _, f := range fs {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	return nil
}

// sortFindings orders by file (as given), then document, then the order the
// checks ran in.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.fileIndex != b.fileIndex {
			return a.fileIndex < b.fileIndex
		}
		if a.doc != b.doc {
			return a.doc < b.doc
		}
		return a.seq < b.seq
	})
}
