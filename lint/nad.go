package lint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/braid-cni/braid/delegate"
	"github.com/braid-cni/braid/devices"
	"github.com/braid-cni/braid/nad"
	"github.com/braid-cni/braid/netconf"
)

// binary is one plugin binary a config makes the runtime (or a plugin) call.
type binary struct {
	field string // where its type is named
	typ   string
}

func isNAD(o object) bool {
	return o.meta.Kind == "NetworkAttachmentDefinition" && o.meta.APIVersion == nadv1.SchemeGroupVersion.String()
}

// nad checks one NetworkAttachmentDefinition and records it for the pods.
func (l *linter) nad(ctx context.Context, o object) {
	// spec.config is kept raw: a config written as a YAML mapping instead
	// of a string is a common mistake, worth its own finding.
	var n struct {
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Config json.RawMessage `json:"config"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(o.raw, &n); err != nil {
		l.undecodable(o, err)
		return
	}
	ns := namespaceOr(n.Namespace)
	r := l.reporter(o, ns, n.Name)
	switch {
	case n.Name == "":
		r.add("metadata.name", Error, "is required")
	default:
		if msgs := validation.IsDNS1123Subdomain(n.Name); len(msgs) > 0 {
			r.add("metadata.name", Error, "%q is not a DNS-1123 subdomain: %s", n.Name, strings.Join(msgs, "; "))
		}
	}
	if res, ok := n.Annotations[devices.ResourceNameKey]; ok {
		if msg := checkResourceName(res); msg != "" {
			r.add("metadata.annotations["+devices.ResourceNameKey+"]", Error, "%s", msg)
		}
	}
	var config string
	if len(n.Spec.Config) > 0 && string(n.Spec.Config) != "null" {
		if err := json.Unmarshal(n.Spec.Config, &config); err != nil {
			var v any
			_ = json.Unmarshal(n.Spec.Config, &v)
			r.add("spec.config", Error, "is %s, not a string: write the CNI config as a JSON string (config: |)", jsonKind(v))
			l.nads[ns+"/"+n.Name] = &nadInfo{resource: devices.ResourceName(n.Annotations)}
			return
		}
	}
	d, bins := r.config(n.Name, config)
	l.nads[ns+"/"+n.Name] = &nadInfo{delegate: d, resource: devices.ResourceName(n.Annotations)}
	if d != nil && len(l.opts.BinDirs) > 0 {
		l.checkBinaries(ctx, r, d.CNIVersion(), bins)
	}
}

// checkResourceName checks an extended resource name: "domain/name".
func checkResourceName(res string) string {
	if !strings.Contains(res, "/") {
		return fmt.Sprintf("%q is not an extended resource name: it needs a domain prefix, like example.com/sriov_netdevice", res)
	}
	if msgs := validation.IsQualifiedName(res); len(msgs) > 0 {
		return fmt.Sprintf("%q is not a valid resource name: %s", res, strings.Join(msgs, "; "))
	}
	return ""
}

// config checks spec.config and loads it as braid does. It returns the
// delegate (nil when braid could not run it) and the binaries it names.
func (r *reporter) config(name, config string) (*delegate.Delegate, []binary) {
	const field = nad.ConfigField
	conf, err := nad.Config(name, config)
	switch {
	case err != nil:
		r.add(field, Error, "%s", problem(err))
		return nil, nil
	case conf == nil:
		r.add(field, Warning, "is empty: braid then reads the config named %q from its confDir on each node; make sure it is there", name)
		return nil, nil
	}
	// nad.Config took it, so it is a JSON object; the findings read it as
	// written, before braid filled in a missing name.
	var doc map[string]any
	_ = json.Unmarshal([]byte(config), &doc)
	errorsBefore := r.l.errors
	r.name(doc, name)
	r.version(doc)
	bins := r.plugins(doc)
	// What ADD does next: delegate.Load parses it as the plugin will.
	d, err := delegate.Load(conf)
	if err == nil {
		return d, bins
	}
	if r.l.errors == errorsBefore {
		r.add(field, Error, "braid refuses it: %v", err)
	}
	return nil, nil
}

// problem is a nad.Config error as a finding's message, which follows the
// field the error's message begins with.
func problem(err error) string {
	var te *types.Error
	if !errors.As(err, &te) {
		return err.Error()
	}
	msg := strings.TrimPrefix(te.Msg, nad.ConfigField+" ")
	if te.Details != "" {
		msg += ": " + te.Details
	}
	return msg
}

func (r *reporter) name(doc map[string]any, nadName string) {
	raw, ok := doc["name"]
	switch {
	case !ok || raw == "":
		r.add("spec.config.name", Info, "is not set: braid names the network %q, after the NAD", nadName)
	default:
		if _, isString := raw.(string); !isString {
			r.add("spec.config.name", Error, "is %s, not a string", jsonKind(raw))
		}
	}
}

func (r *reporter) version(doc map[string]any) {
	const field = "spec.config.cniVersion"
	supported := version.All.SupportedVersions()
	raw, ok := doc["cniVersion"]
	if !ok || raw == "" {
		r.add(field, Warning, "is not set: plugins then assume spec version 0.1.0; set one of %s", strings.Join(supported, ", "))
		return
	}
	v, isString := raw.(string)
	switch {
	case !isString:
		r.add(field, Error, "is %s, not a string", jsonKind(raw))
	case !slices.Contains(supported, v):
		r.add(field, Error, "%q is not a CNI spec version (supported: %s)", v, strings.Join(supported, ", "))
	}
}

// plugins checks a conflist's plugins, or a single config's type, and
// returns the binaries named.
func (r *reporter) plugins(doc map[string]any) []binary {
	raw, isList := doc["plugins"]
	if !isList {
		return r.pluginType("spec.config", doc)
	}
	list, ok := raw.([]any)
	switch {
	case !ok:
		r.add("spec.config.plugins", Error, "is %s, not a list of plugin configs", jsonKind(raw))
		return nil
	case len(list) == 0:
		r.add("spec.config.plugins", Error, "is empty: a conflist needs at least one plugin")
		return nil
	}
	var bins []binary
	for i, p := range list {
		field := fmt.Sprintf("spec.config.plugins[%d]", i)
		obj, ok := p.(map[string]any)
		if !ok {
			r.add(field, Error, "is %s, not a plugin config object", jsonKind(p))
			continue
		}
		bins = append(bins, r.pluginType(field, obj)...)
	}
	return bins
}

// pluginType checks one plugin config's type and its IPAM plugin's.
func (r *reporter) pluginType(field string, obj map[string]any) []binary {
	var bins []binary
	typ, _ := obj["type"].(string)
	if typ == "" {
		r.add(field+".type", Error, "is required: it names the plugin binary")
	} else {
		bins = append(bins, binary{field: field + ".type", typ: typ})
	}
	if ipam, ok := obj["ipam"].(map[string]any); ok {
		if t, _ := ipam["type"].(string); t != "" {
			bins = append(bins, binary{field: field + ".ipam.type", typ: t})
		}
	}
	for _, b := range bins {
		if netconf.IsBraid(b.typ) {
			r.add(b.field, Error, "is %q, which is braid itself: braid refuses the network (it never runs itself as a delegate)", b.typ)
		}
	}
	return bins
}

// jsonKind names the JSON type of a decoded value, with its article.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	default:
		return "an object"
	}
}
