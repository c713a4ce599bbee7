// Package webhook is braid's validating admission webhook: it refuses a
// NetworkAttachmentDefinition whose spec.config braid could not load, and a
// pod whose networks annotation braid could not parse or that names an
// interface twice, when they are created instead of when a pod fails to
// start. It checks with the code the plugin itself runs (nad, delegate,
// annotations), so it refuses exactly what the plugin would. It also sets
// up its serving certificate: given files, or a self-signed CA it
// publishes in the ValidatingWebhookConfiguration's caBundle.
package webhook
