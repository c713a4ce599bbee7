package lint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// object is one Kubernetes object of a linted file, as JSON.
type object struct {
	fileIndex int
	file      string
	doc       int // document number in the file, from 1; items of a List share it
	meta      metav1.TypeMeta
	raw       []byte
}

// documents splits a YAML or JSON stream into objects, expanding Lists.
// A document that is not YAML, or not a Kubernetes object, is a finding.
func documents(fileIndex int, file string, data []byte) ([]object, []Finding) {
	var objs []object
	var findings []Finding
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		chunk, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		bad := func(msg string) {
			findings = append(findings, Finding{File: file, Kind: "document", Object: fmt.Sprintf("#%d", doc),
				Field: "-", Severity: Error, Message: msg, fileIndex: fileIndex, doc: doc})
		}
		if err != nil {
			bad(fmt.Sprintf("cannot read YAML: %v", err))
			break
		}
		js, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			bad(fmt.Sprintf("not valid YAML: %v", err))
			continue
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			doc-- // a comment-only or empty document is no document
			continue
		}
		expanded, err := expand(js)
		if err != nil {
			bad(err.Error())
			continue
		}
		for _, e := range expanded {
			e.fileIndex, e.file, e.doc = fileIndex, file, doc
			objs = append(objs, e)
		}
	}
	return objs, findings
}

// expand returns the object, or the items of a List (nested Lists too).
func expand(js []byte) ([]object, error) {
	var head struct {
		metav1.TypeMeta
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %v", err)
	}
	if head.Kind == "" || head.APIVersion == "" {
		return nil, errors.New("not a Kubernetes object: apiVersion and kind are required")
	}
	// v1 List, or a typed list such as NetworkAttachmentDefinitionList.
	isList := head.Kind == "List" || (strings.HasSuffix(head.Kind, "List") && head.Items != nil)
	if !isList {
		return []object{{meta: head.TypeMeta, raw: js}}, nil
	}
	var out []object
	for _, item := range head.Items {
		objs, err := expand(item)
		if err != nil {
			return nil, fmt.Errorf("list item: %w", err)
		}
		out = append(out, objs...)
	}
	return out, nil
}
