// Package localcluster runs a real Kubernetes control plane on this machine:
// etcd and kube-apiserver, and on request kube-controller-manager, as child
// processes on free loopback ports, with generated credentials, in one
// directory. Integration tests, `gpufleet cluster up` and the demo use it.
//
// Nodes are either simulated, Node objects without a kubelet (see GPUNode),
// whose pods stay where the scheduler under test puts them, or one real
// node with containerd and the kubelet (see StartRealNode and
// docs/real-node.md).
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The Service network of every local cluster; KubernetesServiceIP is the
// kubernetes Service's address in it.
const (
	ServiceCIDR         = "10.96.0.0/16"
	KubernetesServiceIP = "10.96.0.1"
)

// Options configure a control plane.
type Options struct {
	// Dir holds certificates, etcd data, logs and the kubeconfig. Empty means
	// a new temporary directory that Stop removes. A given Dir is kept, but
	// its previous etcd data is wiped so every start is a fresh cluster.
	Dir string
	// BinDir holds etcd, kube-apiserver and kube-controller-manager. Empty
	// means DefaultBinDir; missing binaries are built (see EnsureBinaries).
	BinDir string
	// APIServerArgs are extra kube-apiserver flags (`--name=value`), applied
	// after the defaults, so they override them.
	APIServerArgs []string
	// StartTimeout bounds how long each component may take to become ready.
	// Default 90s: generous for a loaded 2-core machine.
	StartTimeout time.Duration
	// NodeAddress, when set, makes the control plane reachable from pods
	// of a real node (StartRealNode): kube-apiserver listens on every
	// address and advertises this one (the machine's own, see
	// NodeAddress()) as the kubernetes Service's endpoint, serves a
	// certificate valid for it and for the Service address 10.96.0.1,
	// admits pods with service-account tokens, and reaches kubelets by
	// their InternalIP. Empty: loopback only, no kubelet (simulated nodes).
	NodeAddress string
}

// Cluster is a running local control plane.
type Cluster struct {
	// Dir is the directory of this control plane's files.
	Dir string
	// KubeconfigPath is an admin kubeconfig (system:masters) for the cluster.
	KubeconfigPath string
	// Config is the admin client configuration.
	Config *rest.Config
	// APIServerURL is the https URL of kube-apiserver.
	APIServerURL string
	// EtcdURL is the client URL of etcd.
	EtcdURL string

	ownsDir      bool
	nodeAddress  string
	startTimeout time.Duration
	bins         map[string]string
	pki          *pki

	mu    sync.Mutex
	etcd  *process
	api   *process
	kcm   *process
	sched *process
	pids  []int
	ports []int
	// launched remembers how each component was started, for CrashRestart.
	launched map[string]launchSpec
	stopped  bool
	stopErr  error
	stopOnce sync.Once
}

// Start brings up etcd and kube-apiserver and returns once /readyz answers
// ok. On error nothing is left running.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	c = &Cluster{Dir: opts.Dir, startTimeout: opts.StartTimeout, nodeAddress: opts.NodeAddress}
	var extraIPs []net.IP
	if c.nodeAddress != "" {
		ip := net.ParseIP(c.nodeAddress)
		if ip == nil || ip.IsLoopback() {
			return nil, fmt.Errorf("NodeAddress %q: want the machine's own non-loopback IP address (pods cannot reach loopback)", c.nodeAddress)
		}
		extraIPs = []net.IP{ip, net.ParseIP(KubernetesServiceIP)}
	}
	if c.startTimeout == 0 {
		c.startTimeout = 90 * time.Second
	}
	if c.Dir == "" {
		if c.Dir, err = newTempDir(os.TempDir()); err != nil {
			return nil, err
		}
		c.ownsDir = true
	} else {
		if c.Dir, err = filepath.Abs(c.Dir); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(filepath.Join(c.Dir, "etcd")); err != nil {
			return nil, fmt.Errorf("wiping old etcd data: %w", err)
		}
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()

	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = DefaultBinDir(); err != nil {
			return c, err
		}
	}
	if c.bins, err = EnsureBinaries(ctx, binDir, Etcd, KubeAPIServer, KubeControllerManager); err != nil {
		return c, err
	}
	if c.pki, err = newPKI(filepath.Join(c.Dir, "pki"), extraIPs...); err != nil {
		return c, fmt.Errorf("generating credentials: %w", err)
	}
	if err := c.startEtcd(ctx); err != nil {
		return c, err
	}
	if err := c.startAPIServer(ctx, opts.APIServerArgs); err != nil {
		return c, err
	}
	if err := c.writeKubeconfig(); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	dataDir := filepath.Join(c.Dir, "etcd")
	p, ports, err := c.launch(ctx, Etcd, 2, func(ports []int) []string {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		return []string{
			"--name=gpufleet-local",
			"--data-dir=" + dataDir,
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=gpufleet-local=" + peer,
			// A throwaway cluster: durability is not worth the fsync latency.
			"--unsafe-no-fsync=true",
			"--log-level=warn",
		}
	}, func(ctx context.Context, ports []int) error {
		return httpOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/health", ports[0]), `"health":"true"`)
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.etcd = p
	c.mu.Unlock()
	c.EtcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	return nil
}

func (c *Cluster) startAPIServer(ctx context.Context, extra []string) error {
	k := c.pki
	var (
		client     *http.Client
		clientPort int
	)
	p, ports, err := c.launch(ctx, KubeAPIServer, 1, func(ports []int) []string {
		args := []string{
			"--etcd-servers=" + c.EtcdURL,
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--cert-dir=" + filepath.Join(c.Dir, "apiserver-certs"),
			"--tls-cert-file=" + k.servingCertFile,
			"--tls-private-key-file=" + k.servingKey,
			"--client-ca-file=" + k.caFile,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + k.saPubFile,
			"--service-account-signing-key-file=" + k.saKeyFile,
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			// Aggregation: lets APIServices (the metrics adapter) work.
			"--requestheader-client-ca-file=" + k.frontProxyCAFile,
			"--requestheader-allowed-names=" + frontProxyClientName,
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + k.proxyClientCert,
			"--proxy-client-key-file=" + k.proxyClientK,
			"--profiling=false",
		}
		if c.nodeAddress == "" {
			args = append(args,
				"--bind-address=127.0.0.1",
				"--advertise-address=127.0.0.1",
				// No kubelet mounts tokens here, and without the serviceaccount
				// controller a namespace has no default ServiceAccount, so pods
				// would be rejected; Kubernetes' own integration tests do the same.
				"--disable-admission-plugins=ServiceAccount",
				// The apiserver's own Endpoints would be 127.0.0.1, which
				// Endpoints validation rejects.
				"--endpoint-reconciler-type=none",
			)
		} else {
			args = append(args,
				"--bind-address=0.0.0.0",
				"--advertise-address="+c.nodeAddress,
				"--endpoint-reconciler-type=lease",
				// Node names do not resolve here.
				"--kubelet-preferred-address-types=InternalIP,Hostname",
				// The apiserver authenticates to kubelets (logs, exec) as a
				// system:masters client.
				"--kubelet-client-certificate="+k.adminCertFile,
				"--kubelet-client-key="+k.adminKeyFile,
				// Without the node lifecycle controller (it would mark
				// simulated nodes unreachable) nothing would lift the
				// not-ready taint this plugin puts on a new node.
				"--disable-admission-plugins=TaintNodesByCondition",
			)
		}
		return append(args, extra...)
	}, func(ctx context.Context, ports []int) error {
		cfg := c.restConfig(ports[0])
		if clientPort != ports[0] {
			var err error
			if client, err = rest.HTTPClientFor(cfg); err != nil {
				return err
			}
			clientPort = ports[0]
		}
		return httpOK(ctx, client, cfg.Host+"/readyz", "ok")
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.api = p
	c.mu.Unlock()
	c.Config = c.restConfig(ports[0])
	c.APIServerURL = c.Config.Host
	return nil
}

func (c *Cluster) restConfig(port int) *rest.Config {
	return &rest.Config{
		Host: fmt.Sprintf("https://127.0.0.1:%d", port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.pki.caPEM,
			CertData: c.pki.adminCert,
			KeyData:  c.pki.adminKey,
		},
		QPS:   100,
		Burst: 200,
	}
}

func (c *Cluster) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["gpufleet-local"] = &clientcmdapi.Cluster{
		Server:                   c.APIServerURL,
		CertificateAuthorityData: c.pki.caPEM,
	}
	cfg.AuthInfos["gpufleet-admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: c.pki.adminCert,
		ClientKeyData:         c.pki.adminKey,
	}
	cfg.Contexts["gpufleet-local"] = &clientcmdapi.Context{Cluster: "gpufleet-local", AuthInfo: "gpufleet-admin"}
	cfg.CurrentContext = "gpufleet-local"
	c.KubeconfigPath = filepath.Join(c.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, c.KubeconfigPath); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return nil
}

// launch starts one component on fresh ports and waits until ready says so.
// A component that loses a port race ("address already in use") is retried
// on new ports; any other failure returns its log tail.
func (c *Cluster) launch(ctx context.Context, name string, nPorts int, args func([]int) []string, ready func(context.Context, []int) error) (*process, []int, error) {
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	const attempts = 4
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(nPorts)
		if err != nil {
			return nil, nil, err
		}
		p, err := startProcess(name, c.bins[name], args(ports), logPath)
		if err != nil {
			return nil, nil, err
		}
		c.mu.Lock()
		c.pids = append(c.pids, p.pid())
		c.ports = append(c.ports, ports...)
		c.mu.Unlock()
		err = waitReady(ctx, p, c.startTimeout, func(ctx context.Context) error { return ready(ctx, ports) })
		if err == nil {
			c.mu.Lock()
			if c.launched == nil {
				c.launched = map[string]launchSpec{}
			}
			c.launched[name] = launchSpec{args: args(ports), ports: ports, ready: ready}
			c.mu.Unlock()
			return p, ports, nil
		}
		tail := p.logTail(40)
		_ = p.stop(5 * time.Second)
		if attempt < attempts && strings.Contains(tail, "address already in use") {
			continue
		}
		return nil, nil, fmt.Errorf("%s did not become ready: %w\nlast lines of %s:\n%s", name, err, logPath, tail)
	}
}

// waitReady polls check until it succeeds, the child exits, or timeout.
func waitReady(ctx context.Context, p *process, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if done, err := p.exited(); done {
			return fmt.Errorf("exited before it was ready: %v", err)
		}
		reqCtx, reqCancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(reqCtx)
		reqCancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w (last check: %v)", timeout, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// httpOK GETs url and wants status 200 with want in the body.
func httpOK(ctx context.Context, client *http.Client, url, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: %s: %.300s", url, resp.Status, body)
	}
	return nil
}

// PIDs returns the process ids of every child this cluster has started,
// including ones already stopped.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.pids...)
}

// Ports returns every loopback port this cluster's children were given.
func (c *Cluster) Ports() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.ports...)
}

// Logs returns the last n lines of each running or stopped component's log.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	for _, name := range []string{Etcd, KubeAPIServer, KubeControllerManager, KubeScheduler} {
		path := filepath.Join(c.Dir, "logs", name+".log")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", path, TailFile(path, n))
	}
	return b.String()
}

// Stop ends every child (SIGTERM, then SIGKILL after a grace period), waits
// until each is reaped, and removes the directory if Start created it. It is
// safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		procs := []*process{c.sched, c.kcm, c.api, c.etcd}
		c.stopped = true
		c.mu.Unlock()
		var errs []error
		for _, p := range procs {
			if p != nil {
				errs = append(errs, p.stop(15*time.Second))
			}
		}
		if c.ownsDir {
			errs = append(errs, os.RemoveAll(c.Dir))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}
