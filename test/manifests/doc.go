// Package manifests holds the tests of the Kubernetes manifests under
// manifests/ (kustomize): every kustomization builds, its pods follow the
// project's security and resource rules, the scheduler's configuration
// decodes strictly and validates with kube-scheduler's own code, alert,
// dashboard and analysis queries name real metrics, and everything applies
// to a real kube-apiserver with the vendored third-party CRDs (test/crds).
package manifests
