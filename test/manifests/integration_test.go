package manifests_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/localcluster/clustertest"
)

// vendoredCRDs are the third-party CRDs the components and examples use,
// vendored unmodified under test/crds (see the READMEs there).
var vendoredCRDs = []string{"prometheus-operator", "argo-rollouts"}

const fieldManager = "gpufleet-manifests-test"

// kubectlFunc runs kubectl against the test's control plane.
type kubectlFunc func(stdin []byte, args ...string) (stdout, stderr []byte, err error)

// TestIntegrationManifests applies every kustomization to a real
// kube-apiserver: server-side dry runs validate each object against the
// API's schemas (the CRDs' included, unknown fields rejected) and run
// admission, Pod Security included; the RBAC objects are applied for real
// and checked with SubjectAccessReviews against what each component does.
func TestIntegrationManifests(t *testing.T) {
	e := newEnv(t)
	builds := build(t, e) // before the control plane: fail fast
	c, client := clustertest.Start(t, localcluster.Options{})
	kubectl := kubectlFunc(func(stdin []byte, args ...string) (stdout, stderr []byte, err error) {
		// A fresh discovery cache each time: kinds appear as CRDs install.
		base := []string{"--kubeconfig=" + c.KubeconfigPath, "--cache-dir=" + t.TempDir()}
		return e.run(stdin, append(base, args...)...)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Third-party CRDs. Server-side: two Argo CRDs exceed the 256 KiB
	// last-applied annotation of client-side apply.
	args := []string{"apply", "--server-side", "--field-manager=" + fieldManager}
	for _, d := range vendoredCRDs {
		args = append(args, "-f", filepath.Join(e.root, "test", "crds", d))
	}
	if _, _, err := kubectl(nil, args...); err != nil {
		t.Fatalf("installing the vendored CRDs: %v", err)
	}
	if _, _, err := kubectl(nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		t.Fatalf("waiting for the CRDs: %v", err)
	}

	// The namespaces the manifests use, for real (a dry run creates none),
	// warning at the restricted Pod Security level: every pod but the
	// documented exceptions must meet it.
	for _, ns := range namespaces(builds) {
		_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns,
			Labels: map[string]string{
				"pod-security.kubernetes.io/warn":         "restricted",
				"pod-security.kubernetes.io/warn-version": "latest",
			},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}

	t.Run("DryRun", func(t *testing.T) {
		// The Helm chart's renders too.
		for _, b := range append(slices.Clone(builds), allChartBuilds(t, e)...) {
			out, errOut, err := kubectl(b.yaml, "apply", "--server-side", "--dry-run=server", "--field-manager="+fieldManager, "-f", "-")
			if err != nil {
				t.Errorf("%s: server-side dry-run apply: %v\n%s", b.name, err, out)
				continue
			}
			t.Logf("%s: %d objects valid\n%s", b.name, len(b.objs), errOut)
		}
	})

	t.Run("PodSecurity", func(t *testing.T) {
		done := map[string]bool{}
		for _, b := range builds {
			for _, u := range b.objs {
				if _, ok := templatePaths[u.GetKind()]; !ok || done[key(u)] {
					continue
				}
				done[key(u)] = true
				violations := podSecurityWarnings(t, kubectl, u)
				_, exempt := exceptions[short(u)]
				switch {
				case exempt && len(violations) == 0 && u.GetAPIVersion() == "apps/v1":
					t.Errorf("%s: listed as an exception but meets restricted: remove the exception", short(u))
				case exempt:
					t.Logf("%s (documented exception): %s", short(u), strings.Join(violations, "; "))
				case len(violations) > 0:
					t.Errorf("%s (%s): %s", short(u), b.name, strings.Join(violations, "; "))
				}
			}
		}
	})

	// The RBAC objects, for real: the access checks and the components
	// below use them.
	applyRBAC(t, kubectl, builds)

	t.Run("RBAC", func(t *testing.T) {
		checkAccess(ctx, t, client, expectedAccess)
	})

	t.Run("Components", func(t *testing.T) {
		testComponents(ctx, t, c, client, builds)
	})
}

// applyRBAC applies the ServiceAccounts and RBAC objects of every build.
func applyRBAC(t *testing.T, kubectl kubectlFunc, builds []built) {
	t.Helper()
	var rbac bytes.Buffer
	done := map[string]bool{}
	for _, b := range builds {
		for _, u := range b.objs {
			switch u.GetKind() {
			case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			default:
				continue
			}
			if done[key(u)] {
				continue
			}
			done[key(u)] = true
			data, err := u.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			rbac.Write(data)
			rbac.WriteString("\n")
		}
	}
	if out, _, err := kubectl(rbac.Bytes(), "apply", "--server-side", "--field-manager="+fieldManager, "-f", "-"); err != nil {
		t.Fatalf("applying the RBAC objects: %v\n%s", err, out)
	}
}

// namespaces returns the namespaces the builds put objects in, other than
// those every cluster has.
func namespaces(builds []built) []string {
	var out []string
	for _, b := range builds {
		for _, u := range b.objs {
			ns := u.GetNamespace()
			if u.GetKind() == "Namespace" {
				ns = u.GetName()
			}
			if ns != "" && ns != "default" && ns != "kube-system" && !slices.Contains(out, ns) {
				out = append(out, ns)
			}
		}
	}
	return out
}

// podSecurityWarnings dry-runs one object and returns the Pod Security
// admission's warnings about it.
func podSecurityWarnings(t *testing.T, kubectl kubectlFunc, u *unstructured.Unstructured) []string {
	t.Helper()
	data, err := u.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, err := kubectl(data, "apply", "--server-side", "--dry-run=server", "--field-manager="+fieldManager, "-f", "-")
	if err != nil {
		t.Fatalf("%s: %v", short(u), err)
	}
	var out []string
	for _, line := range strings.Split(string(errOut), "\n") {
		if strings.Contains(line, "would violate PodSecurity") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

// access is one request a ServiceAccount must (allowed) or must not make.
type access struct {
	sa                                 string // namespace/name
	verb, group, resource, subresource string
	namespace, name                    string
	allowed                            bool
}

func (a access) String() string {
	r := a.resource
	if a.group != "" {
		r += "." + a.group
	}
	if a.subresource != "" {
		r += "/" + a.subresource
	}
	return fmt.Sprintf("%s %s %s ns=%q name=%q", a.sa, a.verb, r, a.namespace, a.name)
}

const (
	agentSA     = "gpufleet-system/gpufleet-gpu-agent"
	adapterSA   = "gpufleet-system/gpufleet-metrics-adapter"
	schedulerSA = "gpufleet-system/gpufleet-scheduler"
	hpaSA       = "kube-system/horizontal-pod-autoscaler"
	routerSA    = "ml-production/model-router"
)

// expectedAccess is what each component does (and a sample of what it must
// not be able to do), from its code: pkg/agent (node labels, pod index),
// pkg/adapter/cluster (informers) and the custom-metrics-apiserver library
// (delegated authentication and authorization), kube-scheduler with GPUPack
// (PreBind patch, Bind, leader election), the HPA controller reading
// the metrics APIs, and the model router (pkg/inference/router: its own
// namespace's EndpointSlice, pod and Rollout informers).
var expectedAccess = []access{
	{sa: agentSA, verb: "get", resource: "nodes", name: "gpu-node-0", allowed: true},
	{sa: agentSA, verb: "patch", resource: "nodes", name: "gpu-node-0", allowed: true},
	{sa: agentSA, verb: "list", resource: "pods", allowed: true},
	{sa: agentSA, verb: "watch", resource: "pods", allowed: true},
	{sa: agentSA, verb: "update", resource: "nodes", name: "gpu-node-0"},
	{sa: agentSA, verb: "delete", resource: "nodes", name: "gpu-node-0"},
	{sa: agentSA, verb: "patch", resource: "pods", namespace: "ml-production"},
	{sa: agentSA, verb: "get", resource: "secrets", namespace: "gpufleet-system"},

	{sa: adapterSA, verb: "list", resource: "pods", allowed: true},
	{sa: adapterSA, verb: "watch", resource: "pods", allowed: true},
	{sa: adapterSA, verb: "list", resource: "nodes", allowed: true},
	{sa: adapterSA, verb: "watch", resource: "nodes", allowed: true},
	{sa: adapterSA, verb: "list", group: "apps", resource: "replicasets", allowed: true},
	{sa: adapterSA, verb: "watch", group: "apps", resource: "deployments", allowed: true},
	{sa: adapterSA, verb: "list", group: "apps", resource: "statefulsets", allowed: true},
	{sa: adapterSA, verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", allowed: true},
	{sa: adapterSA, verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews", allowed: true},
	{sa: adapterSA, verb: "get", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication", allowed: true},
	{sa: adapterSA, verb: "watch", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication", allowed: true},
	{sa: adapterSA, verb: "get", resource: "configmaps", namespace: "kube-system", name: "kubeadm-config"},
	{sa: adapterSA, verb: "get", resource: "secrets", namespace: "gpufleet-system"},
	{sa: adapterSA, verb: "patch", resource: "pods", namespace: "ml-production"},
	{sa: adapterSA, verb: "list", group: "batch", resource: "jobs"},

	{sa: hpaSA, verb: "get", group: "custom.metrics.k8s.io", resource: "pods", subresource: "requests_per_second", namespace: "ml-production", name: "*", allowed: true},
	{sa: hpaSA, verb: "list", group: "custom.metrics.k8s.io", resource: "pods", subresource: "gpu_utilization", namespace: "ml-production", allowed: true},
	{sa: hpaSA, verb: "get", group: "external.metrics.k8s.io", resource: "requests_per_second", namespace: "ml-production", allowed: true},
	{sa: hpaSA, verb: "create", group: "custom.metrics.k8s.io", resource: "pods", namespace: "ml-production"},

	{sa: schedulerSA, verb: "create", resource: "pods", subresource: "binding", namespace: "ml-production", name: "p", allowed: true},
	{sa: schedulerSA, verb: "patch", resource: "pods", namespace: "ml-production", name: "p", allowed: true},
	{sa: schedulerSA, verb: "patch", resource: "pods", subresource: "status", namespace: "ml-production", name: "p", allowed: true},
	{sa: schedulerSA, verb: "watch", resource: "pods", allowed: true},
	{sa: schedulerSA, verb: "list", resource: "nodes", allowed: true},
	{sa: schedulerSA, verb: "list", resource: "persistentvolumeclaims", allowed: true},
	{sa: schedulerSA, verb: "create", group: "coordination.k8s.io", resource: "leases", namespace: "gpufleet-system", allowed: true},
	{sa: schedulerSA, verb: "get", group: "coordination.k8s.io", resource: "leases", namespace: "gpufleet-system", name: "gpufleet-scheduler", allowed: true},
	{sa: schedulerSA, verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "gpufleet-system", name: "gpufleet-scheduler", allowed: true},
	{sa: schedulerSA, verb: "get", resource: "configmaps", namespace: "kube-system", name: "extension-apiserver-authentication", allowed: true},
	{sa: schedulerSA, verb: "create", group: "authentication.k8s.io", resource: "tokenreviews", allowed: true},
	{sa: schedulerSA, verb: "update", group: "coordination.k8s.io", resource: "leases", namespace: "gpufleet-system", name: "someone-else"},
	{sa: schedulerSA, verb: "update", resource: "pods", namespace: "ml-production", name: "p"},
	{sa: schedulerSA, verb: "delete", resource: "nodes", name: "gpu-node-0"},
	{sa: schedulerSA, verb: "get", resource: "secrets", namespace: "kube-system"},

	{sa: routerSA, verb: "list", group: "discovery.k8s.io", resource: "endpointslices", namespace: "ml-production", allowed: true},
	{sa: routerSA, verb: "watch", group: "discovery.k8s.io", resource: "endpointslices", namespace: "ml-production", allowed: true},
	{sa: routerSA, verb: "watch", resource: "pods", namespace: "ml-production", allowed: true},
	{sa: routerSA, verb: "list", group: "argoproj.io", resource: "rollouts", namespace: "ml-production", allowed: true},
	{sa: routerSA, verb: "list", group: "discovery.k8s.io", resource: "endpointslices", namespace: "gpufleet-system"},
	{sa: routerSA, verb: "get", resource: "secrets", namespace: "ml-production"},
	{sa: routerSA, verb: "patch", group: "argoproj.io", resource: "rollouts", namespace: "ml-production", name: "property-value-canary"},
}

// checkAccess asks kube-apiserver's authorizer about every access: the
// allowed ones first, polling while the RBAC caches catch up with the
// objects just applied; then the denied ones.
func checkAccess(ctx context.Context, t *testing.T, client kubernetes.Interface, want []access) {
	t.Helper()
	for _, allowed := range []bool{true, false} {
		for _, a := range want {
			if a.allowed != allowed {
				continue
			}
			var got bool
			err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
				var err error
				got, err = review(ctx, client, a)
				return err != nil || got || !allowed, err
			})
			if err != nil && !wait.Interrupted(err) {
				t.Fatalf("%s: %v", a, err)
			}
			if got != a.allowed {
				t.Errorf("%s: allowed=%t, want %t", a, got, a.allowed)
			}
		}
	}
}

func review(ctx context.Context, client kubernetes.Interface, a access) (bool, error) {
	ns, name, _ := strings.Cut(a.sa, "/")
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Name: a.name,
		},
	}}
	res, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return res.Status.Allowed, nil
}
