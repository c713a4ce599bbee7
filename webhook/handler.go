package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/braid-cni/braid/netconf"
)

// maxBody bounds an AdmissionReview; the API server sends at most 3 MiB of
// object (etcd's limit) plus the request's envelope.
const maxBody = 7 << 20

var (
	podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	nadResource = metav1.GroupVersionResource{Group: nadv1.SchemeGroupVersion.Group, Version: "v1", Resource: "network-attachment-definitions"}
)

// Handler serves AdmissionReviews (admission.k8s.io/v1) on POST.
type Handler struct {
	Log *slog.Logger
	// Braid holds braid's settings on the nodes that decide what it
	// refuses: maxNetworksPerPod (0: braid's default), namespaceIsolation
	// and globalNamespaces. nil: the defaults.
	Braid *netconf.NetConf
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP answers a review with allowed or refused and why. A body that
// is not an AdmissionReview gets HTTP 400, which the API server treats as a
// failed call (the configuration's failurePolicy decides); a review of an
// object that does not decode, or of a resource this webhook does not
// validate, is refused: nothing is let through unchecked.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveReview(w, r, h.review)
}

// serveReview decodes the AdmissionReview of r, has review answer its
// request, and writes the answer.
func serveReview(w http.ResponseWriter, r *http.Request, review func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, fmt.Sprintf("read AdmissionReview: %v (at most %d bytes)", err, maxBody), http.StatusBadRequest)
		return
	}
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "decode AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if in.Request == nil {
		http.Error(w, "AdmissionReview has no request", http.StatusBadRequest)
		return
	}
	resp := review(in.Request)
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: in.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, "encode AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// review validates one request.
func (h *Handler) review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	code, err := h.check(req)
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: err == nil}
	if err != nil {
		h.Log.Info("refused", "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "operation", req.Operation, "reason", err)
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reasonOf(code), Message: err.Error()}
	}
	return resp
}

// check returns why req is refused, with the HTTP code to report: 403 for
// an object braid would refuse, 400 for a request this webhook cannot read.
func (h *Handler) check(req *admissionv1.AdmissionRequest) (int32, error) {
	switch req.Resource {
	case nadResource:
		if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
			return 0, nil
		}
		var nad nadv1.NetworkAttachmentDefinition
		if err := json.Unmarshal(req.Object.Raw, &nad); err != nil {
			return http.StatusBadRequest, fmt.Errorf("decode NetworkAttachmentDefinition %s/%s: %w", req.Namespace, req.Name, err)
		}
		if err := checkNAD(&nad); err != nil {
			return http.StatusForbidden, err
		}
	case podResource:
		// Only creation: the networks of a running pod do not change, and
		// an old pod's bad annotation must not block its updates (removing
		// a finalizer, say).
		if req.Operation != admissionv1.Create {
			return 0, nil
		}
		var pod corev1.Pod
		if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
			return http.StatusBadRequest, fmt.Errorf("decode pod %s/%s: %w", req.Namespace, req.Name, err)
		}
		if err := checkPod(&pod, req.Namespace, h.Braid); err != nil {
			return http.StatusForbidden, err
		}
	default:
		return http.StatusBadRequest, fmt.Errorf("braid-webhook does not validate %s (check the ValidatingWebhookConfiguration's rules)", resourceName(req.Resource))
	}
	return 0, nil
}

func reasonOf(code int32) metav1.StatusReason {
	if code == http.StatusForbidden {
		return metav1.StatusReasonForbidden
	}
	return metav1.StatusReasonBadRequest
}

func resourceName(r metav1.GroupVersionResource) string {
	if r.Group == "" {
		return r.Version + "/" + r.Resource
	}
	return r.Group + "/" + r.Version + "/" + r.Resource
}
