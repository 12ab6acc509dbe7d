package localcluster

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// PauseImage is the sandbox image the real node's containerd uses; make
// images builds it (hack/pause) since no registry is reachable.
const PauseImage = "docker.io/gpufleet/pause:3.10"

// KubeletRoot is the real node's kubelet --root-dir: the usual one, so that
// manifests written for real clusters (the gpu-agent's hostPath to the
// pod-resources socket) apply unchanged. The device-plugin directory under
// it is fixed anyway; one real node runs per machine.
const KubeletRoot = "/var/lib/kubelet"

// realNodePaths are the real node's files: all under its directory except
// the kubelet's root.
type realNodePaths struct {
	dir                        string
	containerdConfig           string
	containerdRoot, containerd string // root and state
	containerdSock             string
	runcRoot                   string
	runc                       string // the runc binary
	cniConfDir, cniIPAMDir     string
	kubeletRoot, kubeletConfig string
	kubeletKubeconfig          string
	podLogs                    string
	proxyConfig, proxyKubecfg  string
	logs                       string
}

func newRealNodePaths(dir string) realNodePaths {
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	return realNodePaths{
		dir:               dir,
		containerdConfig:  j("containerd", "config.toml"),
		containerdRoot:    j("containerd", "root"),
		containerd:        j("containerd", "state"),
		containerdSock:    j("containerd", "containerd.sock"),
		runcRoot:          j("runc"),
		cniConfDir:        j("cni", "net.d"),
		cniIPAMDir:        j("cni", "ipam"),
		kubeletRoot:       KubeletRoot,
		kubeletConfig:     j("kubelet-config.yaml"),
		kubeletKubeconfig: j("kubelet.kubeconfig"),
		podLogs:           j("pod-logs"),
		proxyConfig:       j("kube-proxy-config.yaml"),
		proxyKubecfg:      j("kube-proxy.kubeconfig"),
		logs:              j("logs"),
	}
}

// containerdConfig is containerd 2's config (version 3): every directory
// and socket under the node's directory, the CRI plugins with the local
// pause image, runc under cgroupfs, and the node's CNI network.
func containerdConfig(p realNodePaths) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return fmt.Sprintf(`version = 3
root = %s
state = %s
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins."io.containerd.internal.v1.opt"]
  path = %s

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %s

[plugins."io.containerd.cri.v1.runtime"]
  # The VM lacks CAP_SYS_RESOURCE: without this every sandbox fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  # Network namespaces under the state directory, not /var/run/netns, so
  # that cleaning up the node's directory finds them.
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %s
        Root = %s
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%s]
    conf_dir = %s
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, q(p.containerdRoot), q(p.containerd), q(p.containerdSock), q(p.containerdSock+".ttrpc"),
		q(filepath.Join(p.dir, "containerd", "opt")), q(PauseImage), q(p.runc), q(p.runcRoot), q(CNIBinDir), q(p.cniConfDir))
}

// cniNetwork is the pod network's CNI name.
const cniNetwork = "gpufleet"

// cniConfig is the pod network: a bridge with the gateway address, no IP
// masquerade, hairpin on (a pod reaching itself through a Service), and
// routes to the Service network and the node address only.
func cniConfig(p realNodePaths, nodeAddress string) string {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       cniNetwork,
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      RealNodeBridge,
			"isGateway":   true,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": PodCIDR}}},
				"routes":  []map[string]string{{"dst": ServiceCIDR}, {"dst": nodeAddress + "/32"}},
				"dataDir": p.cniIPAMDir,
			},
		}},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	return string(b)
}

// kubeletConfig is the KubeletConfiguration of the real node: what this
// VM needs (cgroup v1 allowed, cgroupfs, no swap check, no resolv.conf),
// x509 and webhook auth, fast status updates for tests, and eviction and
// image GC thresholds that a nearly full shared disk does not trip.
func kubeletConfig(p realNodePaths, caFile, nodeAddress string, port, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: /%s
failCgroupV1: false
failSwapOn: false
resolvConf: ""
podLogsDir: %s
clusterDomain: cluster.local
nodeStatusUpdateFrequency: 4s
nodeStatusReportFrequency: 10s
syncFrequency: 10s
fileCheckFrequency: 0s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  imagefs.available: 1%%
  nodefs.inodesFree: 1%%
shutdownGracePeriod: 0s
protectKernelDefaults: false
makeIPTablesUtilChains: false
localStorageCapacityIsolation: true
`, nodeAddress, port, healthzPort, caFile, p.containerdSock, realNodeCgroup, p.podLogs)
}

// kubeProxyConfig is kube-proxy in iptables mode for the pod network,
// touching no conntrack sysctls (a VM may refuse them).
func kubeProxyConfig(p realNodePaths, name string, healthzPort, metricsPort int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
clusterCIDR: %s
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, p.proxyKubecfg, name, PodCIDR, healthzPort, metricsPort)
}

// kubeconfigFor writes a kubeconfig text for a client certificate.
func kubeconfigFor(server, caFile, certFile, keyFile string) string {
	return strings.TrimLeft(fmt.Sprintf(`
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: local
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: local
  context:
    cluster: local
    user: local
current-context: local
`, server, caFile, certFile, keyFile), "\n")
}
