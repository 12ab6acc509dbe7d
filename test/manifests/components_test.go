package manifests_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	schedapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	"sigs.k8s.io/yaml"

	agentapp "github.com/gpufleet/gpufleet/cmd/gpu-agent/app"
	inferenceapp "github.com/gpufleet/gpufleet/cmd/inference-server/app"
	adapterapp "github.com/gpufleet/gpufleet/cmd/metrics-adapter/app"
	"github.com/gpufleet/gpufleet/internal/schedtest"
	"github.com/gpufleet/gpufleet/internal/testutil"
	"github.com/gpufleet/gpufleet/pkg/localcluster"
	"github.com/gpufleet/gpufleet/pkg/names"
	"github.com/gpufleet/gpufleet/pkg/plugins/gpupack"
)

// componentEnv makes this test binary run one gpufleet command (see
// TestMain), named by its image; componentArgsEnv holds its arguments
// separated by \x1f.
const (
	componentEnv     = "GPUFLEET_MANIFESTS_TEST_COMPONENT"
	componentArgsEnv = "GPUFLEET_MANIFESTS_TEST_ARGS"
)

// commands are the commands behind gpufleet's images, built as their
// cmd/<binary>/main.go builds them.
var commands = map[string]func() *cobra.Command{
	"gpufleet/gpu-agent":       agentapp.NewCommand,
	"gpufleet/metrics-adapter": adapterapp.NewCommand,
	"gpufleet/scheduler-plugin": func() *cobra.Command {
		return schedapp.NewSchedulerCommand(schedapp.WithPlugin(gpupack.Name, gpupack.New))
	},
	"gpufleet/inference-server": inferenceapp.NewCommand,
}

func TestMain(m *testing.M) {
	if image := os.Getenv(componentEnv); image != "" {
		cmd := commands[image]()
		cmd.SetArgs(strings.Split(os.Getenv(componentArgsEnv), "\x1f"))
		os.Exit(cli.Run(cmd))
	}
	// Helm's chart loader notes each symbolic link through slog's default
	// logger; charts/gpufleet/files/monitoring is one on purpose.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// container is one gpufleet container of the manifests.
type container struct {
	workload string // "Deployment ns/name"
	image    string // without the tag
	spec     corev1.Container
}

func gpufleetContainers(t *testing.T, builds []built) []container {
	t.Helper()
	var out []container
	seen := map[string]bool{}
	for _, b := range builds {
		ws, err := workloads(b.objs)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			for _, c := range w.tmpl.Spec.Containers {
				image, _, _ := strings.Cut(c.Image, "@")
				if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
					image = image[:i]
				}
				id := short(w.obj) + " " + c.Name
				if _, ok := commands[image]; ok && !seen[id] {
					seen[id] = true
					out = append(out, container{workload: short(w.obj), image: image, spec: c})
				}
			}
		}
	}
	return out
}

// testComponents runs every gpufleet container of the manifests as a real
// process with the manifest's own arguments, only the cluster-specific ones
// (ports, paths, credentials in place of the in-cluster ones) appended, as
// its ServiceAccount with the RBAC the manifests grant. Each must become
// ready and do its job: the agent labels its node, the adapter lists what
// it serves and authenticates through kube-apiserver, the scheduler takes
// its Lease and binds a GPU pod with its GPU indices.
func testComponents(ctx context.Context, t *testing.T, c *localcluster.Cluster, client kubernetes.Interface, builds []built) {
	containers := gpufleetContainers(t, builds)
	images := map[string]bool{}
	for _, ctr := range containers {
		images[ctr.image] = true
	}
	if len(images) != len(commands) {
		t.Errorf("the manifests run %d of gpufleet's %d server images: %v", len(images), len(commands), images)
	}
	var base built
	for _, b := range builds {
		if b.name == "base" {
			base = b
		}
	}
	for _, ctr := range containers {
		t.Run(strings.ReplaceAll(ctr.workload, "/", "_"), func(t *testing.T) {
			dir := t.TempDir()
			addr, err := testutil.FreeAddr()
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(addr)
			var extra []string
			var ready func(context.Context) error
			switch ctr.image {
			case "gpufleet/gpu-agent":
				node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "gpu-node-0"}}
				if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				ctr.spec.Args = expand(ctr.spec.Args, map[string]string{"NODE_NAME": node.Name})
				kubeconfig := saKubeconfig(ctx, t, c, client, agentSA)
				extra = []string{"--nvml=mock", "--sim-dir=" + dir, "--listen=" + addr, "--kubeconfig=" + kubeconfig}
				ready = func(ctx context.Context) error {
					if err := httpOK(ctx, "http://"+addr+"/readyz"); err != nil {
						return err
					}
					n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
					if err != nil {
						return err
					}
					if n.Labels[names.LabelGPUCount] != "8" {
						return fmt.Errorf("node labels %v: no %s=8 yet", n.Labels, names.LabelGPUCount)
					}
					return nil
				}
			case "gpufleet/metrics-adapter":
				kubeconfig := saKubeconfig(ctx, t, c, client, adapterSA)
				extra = []string{"--secure-port=" + port, "--bind-address=127.0.0.1", "--cert-dir=" + dir,
					"--forecast-state-file=" + filepath.Join(dir, "forecast-history"),
					"--lister-kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig}
				ready = func(ctx context.Context) error { return httpOK(ctx, "https://"+addr+"/readyz") }
			case "gpufleet/scheduler-plugin":
				kubeconfig := saKubeconfig(ctx, t, c, client, schedulerSA)
				cfg := schedulerConfigFile(t, base, ctr.spec.Args, kubeconfig, dir)
				extra = []string{"--config=" + cfg, "--secure-port=" + port, "--bind-address=127.0.0.1",
					"--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig}
				ready = func(ctx context.Context) error {
					if err := httpOK(ctx, "https://"+addr+"/readyz"); err != nil {
						return err
					}
					return leaderAndBinding(ctx, client)
				}
			case "gpufleet/inference-server":
				root, err := localcluster.ModuleRoot()
				if err != nil {
					t.Fatal(err)
				}
				extra = []string{"--model-repository=" + filepath.Join(root, "models"), "--device=cpu", "--listen=" + addr, "--shutdown-delay=0s"}
				ready = func(ctx context.Context) error { return httpOK(ctx, "http://"+addr+"/v2/health/ready") }
			}
			args := append(slices.Clone(ctr.spec.Args), extra...)
			p := startComponent(t, ctr.image, args, filepath.Join(dir, "log"))
			var last error
			err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
				if done, err := p.Exited(); done {
					return false, fmt.Errorf("exited: %v", err)
				}
				last = ready(ctx)
				return last == nil, nil
			})
			if err != nil {
				t.Fatalf("%s with args %q: not ready: %v (last: %v)\n%s", ctr.workload, args, err, last, p.LogTail(40))
			}
		})
	}
}

// startComponent runs a gpufleet command as a child process until the test
// ends; its log is printed if the test fails.
func startComponent(t *testing.T, image string, args []string, logPath string) *localcluster.Process {
	t.Helper()
	p, err := localcluster.StartProcess(image, os.Args[0], []string{"-test.run=^$"},
		[]string{componentEnv + "=" + image, componentArgsEnv + "=" + strings.Join(args, "\x1f")}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s log (last 40 lines):\n%s", image, p.LogTail(40))
		}
	})
	return p
}

// expand replaces $(NAME) references as the kubelet does with the
// container's environment.
func expand(args []string, env map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range env {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		out[i] = a
	}
	return out
}

// saKubeconfig writes a kubeconfig with a token of the ServiceAccount
// (namespace/name), standing in for the token a pod gets mounted.
func saKubeconfig(ctx context.Context, t *testing.T, c *localcluster.Cluster, client kubernetes.Interface, sa string) string {
	t.Helper()
	ns, name, _ := strings.Cut(sa, "/")
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.APIServerURL, CertificateAuthorityData: c.Config.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "local", AuthInfo: name}
	cfg.CurrentContext = name
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// schedulerConfigFile writes the KubeSchedulerConfiguration the scheduler's
// --config names (from its ConfigMap in base), pointed at kubeconfig in
// place of the in-cluster configuration, and returns its path.
func schedulerConfigFile(t *testing.T, base built, args []string, kubeconfig, dir string) string {
	t.Helper()
	var path string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		}
	}
	var data string
	for _, u := range base.objs {
		if u.GetKind() == "ConfigMap" && u.GetNamespace() == "gpufleet-system" {
			if s, ok, _ := unstructured.NestedString(u.Object, "data", filepath.Base(path)); ok {
				data = s
			}
		}
	}
	if path == "" || data == "" {
		t.Fatalf("scheduler --config %q: no ConfigMap in base holds it", path)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		t.Fatal(err)
	}
	cc, _ := cfg["clientConnection"].(map[string]any)
	if cc == nil {
		cc = map[string]any{}
	}
	cc["kubeconfig"] = kubeconfig
	cfg["clientConnection"] = cc
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// leaderAndBinding checks the scheduler holds and renews its Lease, then that it
// binds a whole-GPU pod to a simulated V100 node with the pod's GPU
// indices (creating both the first time).
func leaderAndBinding(ctx context.Context, client kubernetes.Interface) error {
	lease, err := client.CoordinationV1().Leases("gpufleet-system").Get(ctx, "gpufleet-scheduler", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	// Renewed at least once: creating the Lease needs less than keeping it.
	spec := lease.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity == "" || spec.AcquireTime == nil || spec.RenewTime == nil || !spec.RenewTime.After(spec.AcquireTime.Time) {
		return errors.New("leader election: the Lease is not held and renewed yet")
	}
	const node, ns, name = "v100-0", "ml-production", "gpu-pod"
	if _, err := localcluster.CreateGPUNode(ctx, client, localcluster.GPUNode{Name: node}); err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	pod := schedtest.GPUPod(ns, name, schedtest.SchedulerName, 1, 0, map[string]string{names.AnnotationGPUModel: "V100M16|V100M32"})
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		return err
	}
	got, err := client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if got.Spec.NodeName != node || got.Annotations[names.AnnotationGPUIndices] == "" {
		return fmt.Errorf("pod %s/%s: node %q, GPU indices %q: not bound yet", ns, name, got.Spec.NodeName, got.Annotations[names.AnnotationGPUIndices])
	}
	return nil
}

var insecure = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback probe of a self-signed test server
}}

// httpOK is nil when url answers 200.
func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := insecure.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
