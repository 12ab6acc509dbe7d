package localcluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// RealNodeOptions configure a real node.
type RealNodeOptions struct {
	// Name is the Node's name. Default "gpufleet-node".
	Name string
	// Images are image tarballs (make images) imported into the node's
	// containerd before the kubelet starts. The pause image must be among
	// them or already imported.
	Images []string
	// Labels are set on the Node at registration (kubelet --node-labels).
	Labels map[string]string
}

// RealNode is a real Kubernetes node on this machine: containerd, the
// kubelet and kube-proxy as children of this process, pods in containers
// on a bridge network inside this machine. It is test and demo
// infrastructure: one per machine at a time, opt-in, root only (see
// RealNodeSupported).
type RealNode struct {
	// Name and Address are the Node's name and InternalIP.
	Name    string
	Address string
	// Dir holds every file of the node but the kubelet's (KubeletRoot).
	Dir string
	// ContainerdSocket is containerd's address (ctr --address).
	ContainerdSocket string
	// KubeletReadyAfter is how long the Node took from the kubelet's start
	// to Ready.
	KubeletReadyAfter time.Duration

	cluster *Cluster
	client  kubernetes.Interface
	paths   realNodePaths
	state   realNodeState
	bins    map[string]string
	unlock  func()
	labels  map[string]string

	mu                      sync.Mutex
	containerd, kubelet, kp *process
	guard                   *process
	stopOnce                sync.Once
	stopErr                 error
}

// PodResourcesSocket is the kubelet's pod-resources API socket.
func (n *RealNode) PodResourcesSocket() string {
	return filepath.Join(KubeletRoot, "pod-resources", "kubelet.sock")
}

// StartRealNode starts containerd, imports the images, starts the kubelet
// and kube-proxy, and returns once the Node is Ready. The control plane must
// have been started with Options.NodeAddress. On error nothing is left
// running and the error carries the failing component's log tail.
func (c *Cluster) StartRealNode(ctx context.Context, opts RealNodeOptions) (n *RealNode, err error) {
	if err := RealNodeSupported(); err != nil {
		return nil, err
	}
	if c.nodeAddress == "" {
		return nil, errors.New("the control plane was started without Options.NodeAddress: pods of a real node could not reach it")
	}
	if opts.Name == "" {
		opts.Name = "gpufleet-node"
	}
	for _, img := range opts.Images {
		if _, err := os.Stat(img); err != nil {
			return nil, fmt.Errorf("image %s: %w (make images builds it)", img, err)
		}
	}
	bins, err := EnsureBinaries(ctx, filepath.Dir(c.bins[KubeAPIServer]), Kubelet, KubeProxy, Containerd, ContainerdShim, Ctr)
	if err != nil {
		return nil, err
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, err
	}
	unlock, err := lockRealNode()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "node-"+opts.Name)
	n = &RealNode{
		Name: opts.Name, Address: c.nodeAddress, Dir: dir,
		cluster: c, client: client, paths: newRealNodePaths(dir), bins: bins, unlock: unlock,
	}
	n.ContainerdSocket = n.paths.containerdSock
	n.paths.runc = runc
	ipf, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if pods, _ := os.ReadDir(filepath.Join(KubeletRoot, "pods")); len(pods) > 0 {
		unlock()
		return nil, fmt.Errorf("%s/pods is not empty: another kubelet runs or ran on this machine; a real node would take over its directory", KubeletRoot)
	}
	_, kerr := os.Stat(KubeletRoot)
	n.state = realNodeState{PID: os.Getpid(), Dir: dir, IPForward: strings.TrimSpace(string(ipf)), KubeletDirExisted: kerr == nil, KubeProxy: bins[KubeProxy], Started: time.Now()}
	if err := writeRealNodeState(n.state); err != nil {
		unlock()
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = n.Stop()
			n = nil
		}
	}()
	if err := n.writeConfigs(); err != nil {
		return n, err
	}
	if n.guard, err = startGuard(n.paths.logs); err != nil {
		return n, fmt.Errorf("starting the real node's guard: %w", err)
	}
	if err := makeCgroups(realNodeCgroup); err != nil {
		return n, err
	}
	if err := makeBridge(n.Address); err != nil {
		return n, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	for _, img := range opts.Images {
		if err := n.ImportImage(ctx, img); err != nil {
			return n, err
		}
	}
	n.labels = opts.Labels
	if err := n.startKubelet(ctx, opts.Labels); err != nil {
		return n, err
	}
	if err := n.startKubeProxy(ctx); err != nil {
		return n, err
	}
	return n, nil
}

func (n *RealNode) writeConfigs() error {
	p := n.paths
	for _, d := range []string{p.cniConfDir, p.cniIPAMDir, p.kubeletRoot, p.podLogs, p.runcRoot, p.logs, filepath.Dir(p.containerdConfig)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	pk := n.cluster.pki
	kcert, kkey, err := pk.issueClient("node-"+n.Name, "system:node:"+n.Name, "system:nodes")
	if err != nil {
		return err
	}
	pcert, pkey, err := pk.issueClient("kube-proxy", "system:kube-proxy")
	if err != nil {
		return err
	}
	files := map[string]string{
		p.containerdConfig: containerdConfig(p),
		filepath.Join(p.cniConfDir, "10-gpufleet.conflist"): cniConfig(p, n.Address),
		p.kubeletKubeconfig: kubeconfigFor(n.cluster.APIServerURL, pk.caFile, kcert, kkey),
		p.proxyKubecfg:      kubeconfigFor(n.cluster.APIServerURL, pk.caFile, pcert, pkey),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (n *RealNode) startContainerd(ctx context.Context) error {
	logPath := filepath.Join(n.paths.logs, "containerd.log")
	// Its shim is found on PATH: the one built beside it first.
	path := "PATH=" + filepath.Dir(n.bins[ContainerdShim]) + string(os.PathListSeparator) + os.Getenv("PATH")
	p, err := startProcess("containerd", n.bins[Containerd], []string{"--config", n.paths.containerdConfig}, logPath, path)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.containerd = p
	n.mu.Unlock()
	err = waitReady(ctx, p, n.cluster.startTimeout, func(ctx context.Context) error {
		out, err := n.ctr(ctx, "version")
		if err != nil {
			return fmt.Errorf("%v: %s", err, lastLines(out, 3))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("containerd did not become ready: %w\nlast lines of %s:\n%s", err, logPath, p.logTail(30))
	}
	return nil
}

// ctr runs ctr against the node's containerd in the k8s.io namespace (the
// CRI plugin's).
func (n *RealNode) ctr(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.bins[Ctr], append([]string{"--address", n.paths.containerdSock, "--namespace", "k8s.io"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ImportImage imports an image tarball into the node's containerd, where
// pods with imagePullPolicy Never or IfNotPresent find it.
func (n *RealNode) ImportImage(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if out, err := n.ctr(ctx, "images", "import", "--no-unpack=false", path); err != nil {
		return fmt.Errorf("importing %s: %v: %s", path, err, lastLines(out, 5))
	}
	return nil
}

// Images lists the image references the node's containerd holds.
func (n *RealNode) Images(ctx context.Context) ([]string, error) {
	out, err := n.ctr(ctx, "images", "list", "--quiet")
	if err != nil {
		return nil, fmt.Errorf("listing images: %v: %s", err, lastLines(out, 5))
	}
	return strings.Fields(out), nil
}

func (n *RealNode) startKubelet(ctx context.Context, labels map[string]string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	cfg := kubeletConfig(n.paths, n.cluster.pki.caFile, n.Address, ports[0], ports[1])
	if err := os.WriteFile(n.paths.kubeletConfig, []byte(cfg), 0o600); err != nil {
		return err
	}
	args := []string{
		"--config=" + n.paths.kubeletConfig,
		"--kubeconfig=" + n.paths.kubeletKubeconfig,
		"--root-dir=" + n.paths.kubeletRoot,
		"--cert-dir=" + filepath.Join(n.paths.dir, "kubelet-pki"),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.Address,
		"--v=1",
	}
	if len(labels) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			kv = append(kv, k+"="+labels[k])
		}
		args = append(args, "--node-labels="+strings.Join(kv, ","))
	}
	if err := shareKubeletRoot(n.paths.kubeletRoot); err != nil {
		return err
	}
	logPath := filepath.Join(n.paths.logs, "kubelet.log")
	start := time.Now()
	p, err := startProcess("kubelet", n.bins[Kubelet], args, logPath)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.kubelet = p
	n.mu.Unlock()
	healthz := fmt.Sprintf("http://127.0.0.1:%d/healthz", ports[1])
	err = waitReady(ctx, p, n.cluster.startTimeout, func(ctx context.Context) error {
		if err := httpOK(ctx, http.DefaultClient, healthz, "ok"); err != nil {
			return err
		}
		node, err := n.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !NodeReady(node) {
			return fmt.Errorf("node %s is not Ready: %s", n.Name, readyMessage(node))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kubelet did not become ready: %w\nlast lines of %s:\n%s\nlast lines of containerd's log:\n%s", err, logPath, p.logTail(30), n.containerd.logTail(10))
	}
	n.KubeletReadyAfter = time.Since(start)
	return nil
}

// NodeReady reports whether node's Ready condition is True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func readyMessage(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Reason + ": " + c.Message
		}
	}
	return "no Ready condition yet"
}

func (n *RealNode) startKubeProxy(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.paths.proxyConfig, []byte(kubeProxyConfig(n.paths, n.Name, ports[0], ports[1])), 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(n.paths.logs, "kube-proxy.log")
	p, err := startProcess("kube-proxy", n.bins[KubeProxy], []string{"--config=" + n.paths.proxyConfig, "--v=1"}, logPath)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.kp = p
	n.mu.Unlock()
	healthz := "http://127.0.0.1:" + strconv.Itoa(ports[0]) + "/healthz"
	if err := waitReady(ctx, p, n.cluster.startTimeout, func(ctx context.Context) error { return httpOK(ctx, http.DefaultClient, healthz, "") }); err != nil {
		return fmt.Errorf("kube-proxy did not become ready: %w\nlast lines of %s:\n%s", err, logPath, p.logTail(30))
	}
	return nil
}

// RestartKubelet stops the kubelet (SIGTERM) and starts it again with the
// same configuration, as a node upgrade or a crash-restart does, and waits
// until the Node is Ready again. Containers keep running meanwhile; the new
// kubelet reads its device allocations back from its checkpoint.
func (n *RealNode) RestartKubelet(ctx context.Context) error {
	n.mu.Lock()
	p := n.kubelet
	n.mu.Unlock()
	if p == nil {
		return errors.New("the kubelet is not running")
	}
	if err := p.stop(10 * time.Second); err != nil {
		return err
	}
	return n.startKubelet(ctx, n.labels)
}

// Err says whether containerd, the kubelet or kube-proxy has died, with its
// log tail; nil while all run. Tests poll it beside their own conditions
// so that a dead component fails them at once.
func (n *RealNode) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range []*process{n.containerd, n.kubelet, n.kp} {
		if p == nil {
			continue
		}
		if done, err := p.exited(); done {
			return fmt.Errorf("%s exited: %v\nlast lines of %s:\n%s", p.name, err, p.logPath, p.logTail(30))
		}
	}
	return nil
}

// PIDs returns the process ids of containerd, the kubelet and kube-proxy,
// by name (fault tests kill them).
func (n *RealNode) PIDs() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for _, p := range []*process{n.containerd, n.kubelet, n.kp} {
		if p != nil {
			out[p.name] = p.pid()
		}
	}
	return out
}

// Logs returns the last n lines of each of the node's component logs.
func (n *RealNode) Logs(lines int) string {
	var b strings.Builder
	for _, name := range []string{"containerd", "kubelet", "kube-proxy"} {
		path := filepath.Join(n.paths.logs, name+".log")
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintf(&b, "==> %s <==\n%s\n", path, TailFile(path, lines))
		}
	}
	return b.String()
}

// PodIPOnBridge returns pod's address and whether it is on the real
// node's bridge (the only pod addresses tests may send traffic to).
func PodIPOnBridge(pod *corev1.Pod) (net.IP, bool) {
	ip := net.ParseIP(pod.Status.PodIP)
	_, cidr, _ := net.ParseCIDR(PodCIDR)
	return ip, ip != nil && cidr.Contains(ip)
}

// Stop stops kube-proxy and the kubelet, kills every container of the node,
// stops containerd, and removes the node's mounts, cgroups, bridge,
// iptables rules, directory and Node object. Safe to call more than once.
func (n *RealNode) Stop() error {
	n.stopOnce.Do(func() {
		var errs []error
		n.mu.Lock()
		procs := []*process{n.kp, n.kubelet}
		ctrd := n.containerd
		n.mu.Unlock()
		for _, p := range procs {
			if p != nil {
				errs = append(errs, p.stop(10*time.Second))
			}
		}
		// Containers keep running without containerd (its shims hold them);
		// cleanupRealNode kills them and the shims.
		if ctrd != nil {
			errs = append(errs, ctrd.stop(10*time.Second))
		}
		errs = append(errs, cleanupRealNode(n.state))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) && !isConnRefused(err) {
			errs = append(errs, fmt.Errorf("deleting Node %s: %w", n.Name, err))
		}
		if n.guard != nil {
			// Dismissed without a sweep: everything is clean already.
			_ = syscall.Kill(-n.guard.pid(), syscall.SIGKILL)
			_ = n.guard.stop(5 * time.Second)
		}
		n.unlock()
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

func isConnRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection refused")
}
