package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Host-wide names of the real node. Only one real node runs on a machine at
// a time (the kubelet's device-plugin directory is fixed), so these are
// constants; realNodeLock serialises nodes of parallel test processes.
const (
	// RealNodeBridge is the pod network's Linux bridge.
	RealNodeBridge = "gpufleet0"
	// PodCIDR is the pod network on that bridge: pods get addresses in it
	// and a route to the Service network and the node address only, never a
	// default route.
	PodCIDR = "10.244.0.0/24"
	// realNodeCgroup is the kubelet's cgroup root in every hierarchy.
	realNodeCgroup = "gpufleet-node"
	// realNodeStateDir records what a running real node holds, so that the
	// next one (or `gpufleet cluster down`) can clean up after a node whose
	// process died without stopping it.
	realNodeStateDir = "/run/gpufleet-node"
	// DevicePluginDir is where the kubelet always serves its device-plugin
	// registration socket, whatever its root directory.
	DevicePluginDir = "/var/lib/kubelet/device-plugins"
)

// agentLeftovers are the files a gpu-agent on the node creates on the host
// (pkg/deviceplugin): its device-plugin sockets and, with simulated GPUs,
// their CDI spec.
func agentLeftovers() []string {
	socks, _ := filepath.Glob(filepath.Join(DevicePluginDir, "gpufleet-*.sock"))
	specs, _ := filepath.Glob("/var/run/cdi/sim.gpufleet.io-*.json")
	return append(socks, specs...)
}

// Debian packages and commands the real node needs (make deps installs
// them); containerd, its shim and ctr are built from hack/containerd.
var realNodeCommands = map[string]string{
	"runc":     "runc",
	"iptables": "iptables",
	"ip":       "iproute2",
}

// CNIBinDir is where Debian's containernetworking-plugins installs the CNI
// plugins.
const CNIBinDir = "/usr/lib/cni"

// RealNodeSupported says whether this machine can run a real node, and if
// not, everything that is missing in one actionable message.
func RealNodeSupported() error {
	f := hostFacts{os: runtime.GOOS, root: os.Geteuid() == 0}
	for _, cmd := range slices.Sorted(maps.Keys(realNodeCommands)) {
		if _, err := exec.LookPath(cmd); err != nil {
			f.missingPackages = append(f.missingPackages, realNodeCommands[cmd])
		}
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback"} {
		if !isExecutable(filepath.Join(CNIBinDir, plugin)) {
			f.missingPackages = append(f.missingPackages, "containernetworking-plugins")
			break
		}
	}
	fs, err := os.ReadFile("/proc/filesystems")
	f.overlay = err == nil && strings.Contains(string(fs), "\toverlay\n")
	f.cgroups = cgroupControllers("cpu", "memory", "pids")
	_, f.addressErr = NodeAddress()
	return f.check()
}

// hostFacts are what RealNodeSupported reads off the machine.
type hostFacts struct {
	os              string
	root            bool
	missingPackages []string
	overlay         bool
	cgroups         bool
	addressErr      error
}

// check turns the facts into one message naming everything missing.
func (f hostFacts) check() error {
	if f.os != "linux" {
		return fmt.Errorf("a real node needs Linux (this is %s)", f.os)
	}
	var missing []string
	if !f.root {
		missing = append(missing, "root (the kubelet and containerd mount filesystems and make cgroups and network namespaces; run as root)")
	}
	if len(f.missingPackages) > 0 {
		missing = append(missing, "Debian packages "+strings.Join(dedupe(f.missingPackages), ", ")+" (make deps installs them)")
	}
	if !f.overlay {
		missing = append(missing, "the overlay filesystem (modprobe overlay)")
	}
	if !f.cgroups {
		missing = append(missing, "cgroup controllers cpu, memory and pids (mounted under /sys/fs/cgroup)")
	}
	if f.addressErr != nil {
		missing = append(missing, f.addressErr.Error())
	}
	if len(missing) > 0 {
		return fmt.Errorf("this machine cannot run a real node: it lacks %s", strings.Join(missing, "; "))
	}
	return nil
}

// cgroupControllers reports whether each controller is usable, as a v1
// hierarchy or in the cgroup2 root's controllers.
func cgroupControllers(names ...string) bool {
	v2, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	for _, n := range names {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", n, "cgroup.procs")); err == nil {
			continue
		}
		if !strings.Contains(" "+strings.TrimSpace(string(v2))+" ", " "+n+" ") {
			return false
		}
	}
	return true
}

// NodeAddress is the machine's own address that pods and the apiserver use
// for the real node: the first global-scope IPv4 address of an interface
// that is up, not loopback and not the pod bridge.
func NodeAddress() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || ifc.Name == RealNodeBridge || strings.HasPrefix(ifc.Name, "veth") {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("a non-loopback IPv4 address on an interface that is up (the node's address)")
}

// realNodeState is what a running node records in realNodeStateDir.
type realNodeState struct {
	PID int    `json:"pid"`
	Dir string `json:"dir"`
	// IPForward is net.ipv4.ip_forward before the node (the CNI bridge
	// plugin turns it on); restored on cleanup.
	IPForward string `json:"ipForward"`
	// KubeletDirExisted says whether /var/lib/kubelet was there before.
	KubeletDirExisted bool `json:"kubeletDirExisted"`
	// KubeProxy is the kube-proxy binary, for --cleanup.
	KubeProxy string `json:"kubeProxy"`
	// Started is when the node started: the CNI result cache entries of its
	// networks written since are its own.
	Started time.Time `json:"started"`
}

// lockRealNode takes the machine-wide real-node lock, waiting for a node of
// another process to stop; then it cleans up after a node whose owner died.
func lockRealNode() (unlock func(), err error) {
	if err := os.MkdirAll(realNodeStateDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err = lockFile(filepath.Join(realNodeStateDir, "lock"))
	if err != nil {
		return nil, err
	}
	if err := SweepRealNode(); err != nil {
		unlock()
		return nil, fmt.Errorf("cleaning up after an earlier real node: %w", err)
	}
	return unlock, nil
}

// SweepRealNode removes what a real node whose process died left behind:
// its containers and shims, mounts, cgroups, bridge, kube-proxy rules and
// directory. It does nothing while that process still runs.
func SweepRealNode() error {
	data, err := os.ReadFile(filepath.Join(realNodeStateDir, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st realNodeState
	if err := json.Unmarshal(data, &st); err != nil {
		// Unreadable: nothing to go on but the fixed names.
		st = realNodeState{}
	}
	if st.PID != 0 && st.PID != os.Getpid() && Alive(st.PID) {
		return nil
	}
	return cleanupRealNode(st)
}

func writeRealNodeState(st realNodeState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(realNodeStateDir, "state.json"), data, 0o644)
}

// cleanupRealNode undoes a node's footprint on the host, in an order that
// lets each step succeed: processes first, then mounts, then the rest. It
// keeps going after an error and returns them all.
func cleanupRealNode(st realNodeState) error {
	var errs []error
	// Containers: every process in the node's cgroups.
	killCgroupProcs(realNodeCgroup)
	// Shims (and anything else) started for this node's containerd.
	if st.Dir != "" {
		killProcsMentioning(st.Dir)
	}
	killCgroupProcs(realNodeCgroup)
	if st.Dir != "" {
		errs = append(errs, unmountUnder(st.Dir))
	}
	errs = append(errs, removeCgroups(realNodeCgroup))
	if st.KubeProxy != "" && isExecutable(st.KubeProxy) {
		if out, err := exec.Command(st.KubeProxy, "--cleanup").CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("kube-proxy --cleanup: %v: %s", err, lastLines(string(out), 5)))
		}
	}
	if _, err := net.InterfaceByName(RealNodeBridge); err == nil {
		if out, err := exec.Command("ip", "link", "delete", RealNodeBridge).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("deleting bridge %s: %v: %s", RealNodeBridge, err, out))
		}
	}
	if st.IPForward != "" {
		_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(st.IPForward), 0o644)
	}
	// The kubelet's fixed paths: its registration socket and checkpoint;
	// and what a killed gpu-agent leaves: its device-plugin sockets and the
	// simulated GPUs' CDI spec.
	for _, f := range append([]string{filepath.Join(DevicePluginDir, "kubelet.sock"), filepath.Join(DevicePluginDir, "kubelet_internal_checkpoint")}, agentLeftovers()...) {
		_ = os.Remove(f)
	}
	// Pod volumes (tokens, emptyDirs) are mounted under the kubelet's root.
	errs = append(errs, unmountUnder(KubeletRoot))
	if !st.KubeletDirExisted {
		errs = append(errs, os.RemoveAll(KubeletRoot))
	} else {
		for _, d := range []string{"pods", "pod-resources", "plugins", "plugins_registry", "checkpoints"} {
			errs = append(errs, os.RemoveAll(filepath.Join(KubeletRoot, d)))
		}
	}
	// The CNI library's result cache (fixed at /var/lib/cni): the entries
	// of this node's pod sandboxes, on its network and on loopback.
	if st.Dir != "" {
		removeCNICache(st.Dir, st.Started)
	}
	errs = append(errs, removeLocalnetFirewall())
	if st.Dir != "" {
		errs = append(errs, os.RemoveAll(st.Dir))
	}
	errs = append(errs, os.Remove(filepath.Join(realNodeStateDir, "state.json")))
	return ignoreNotExist(errs)
}

// removeCNICache removes the /var/lib/cni/results entries of the node's
// pod sandboxes: those of its containerd's sandboxes (under dir), and those
// of its networks (its bridge, and the loopback one the CRI plugin sets up)
// written since it started; a sandbox the kubelet removed without a
// successful CNI DEL leaves its entry behind.
func removeCNICache(dir string, started time.Time) {
	const cache = "/var/lib/cni/results"
	ids := map[string]bool{}
	for _, sub := range []string{"root", "state"} {
		entries, _ := os.ReadDir(filepath.Join(dir, "containerd", sub, "io.containerd.grpc.v1.cri", "sandboxes"))
		for _, e := range entries {
			ids[e.Name()] = true
		}
	}
	results, _ := os.ReadDir(cache)
	for _, r := range results {
		name := r.Name()
		mine := false
		for id := range ids {
			mine = mine || strings.Contains(name, "-"+id+"-")
		}
		if info, err := r.Info(); err == nil && !started.IsZero() && !info.ModTime().Before(started) &&
			(strings.HasPrefix(name, cniNetwork+"-") || strings.HasPrefix(name, "cni-loopback-")) {
			mine = true
		}
		if mine {
			_ = os.Remove(filepath.Join(cache, name))
		}
	}
}

// removeLocalnetFirewall removes kube-proxy's KUBE-FIREWALL chain of the
// filter table ("block incoming localnet connections"), which its
// --cleanup leaves.
func removeLocalnetFirewall() error {
	if exec.Command("iptables", "-w", "-S", "KUBE-FIREWALL").Run() != nil {
		return nil // no such chain
	}
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		for exec.Command("iptables", "-w", "-D", hook, "-j", "KUBE-FIREWALL").Run() == nil {
		}
	}
	for _, args := range [][]string{{"-F", "KUBE-FIREWALL"}, {"-X", "KUBE-FIREWALL"}} {
		if out, err := exec.Command("iptables", append([]string{"-w"}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables %v: %v: %s", args, err, out)
		}
	}
	return nil
}

func ignoreNotExist(errs []error) error {
	var keep []error
	for _, e := range errs {
		if e != nil && !errors.Is(e, os.ErrNotExist) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers
// and cgroup2), from the mount table: a directory holding cgroup.procs may
// be a child cgroup, and /sys/fs/cgroup/cpu may be a link to cpu,cpuacct.
func cgroupHierarchies() []string {
	ms, _ := mounts()
	var out []string
	for _, m := range ms {
		if (m.fstype == "cgroup" || m.fstype == "cgroup2") && !slices.Contains(out, m.point) {
			out = append(out, m.point)
		}
	}
	return out
}

// cgroupDirs lists every directory of the named cgroup in each hierarchy.
func cgroupDirs(name string) []string {
	var out []string
	for _, r := range cgroupHierarchies() {
		d := filepath.Join(r, name)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			out = append(out, d)
		}
	}
	return out
}

// killCgroupProcs SIGKILLs every process in the cgroup trees named name
// and waits (briefly) until they are gone.
func killCgroupProcs(name string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := map[int]bool{}
		for _, root := range cgroupDirs(name) {
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
					return nil
				}
				data, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(data)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
						pids[pid] = true
					}
				}
				return nil
			})
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// makeCgroups creates the cgroup named name in every mounted hierarchy
// (the kubelet wants its cgroup root to exist in each), copying the
// parent's CPUs and memory nodes into a v1 cpuset one so that tasks can
// join it.
func makeCgroups(name string) error {
	for _, r := range cgroupHierarchies() {
		d := filepath.Join(r, name)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(r, f)); err == nil && filepath.Base(r) == "cpuset" {
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return fmt.Errorf("setting %s of cgroup %s: %w", f, d, err)
				}
			}
		}
	}
	return nil
}

// makeBridge creates the pod bridge with its gateway address before the
// CNI plugin would, and routes the Service network onto it: a Service
// address that kube-proxy has not (or no longer) translated then stays on
// this machine instead of following the default route out.
func makeBridge(nodeAddress string) error {
	_, cidr, _ := net.ParseCIDR(PodCIDR)
	gw := net.IP(append([]byte(nil), cidr.IP.To4()...))
	gw[3]++
	ones, _ := cidr.Mask.Size()
	for _, args := range [][]string{
		{"link", "add", RealNodeBridge, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("%s/%d", gw, ones), "dev", RealNodeBridge},
		{"link", "set", RealNodeBridge, "up"},
		{"route", "add", ServiceCIDR, "dev", RealNodeBridge, "src", nodeAddress},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// removeCgroups removes the cgroup trees named name, deepest first.
func removeCgroups(name string) error {
	var errs []error
	for _, root := range cgroupDirs(name) {
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			var err error
			// A cgroup whose last process just died may be busy a moment.
			for range 20 {
				if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

// killProcsMentioning SIGKILLs every process whose command line contains
// s (containerd's shims name the containerd socket under the node's dir).
func killProcsMentioning(s string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// mount is one line of /proc/self/mountinfo: where and what.
type mount struct{ point, fstype string }

// mounts reads this process' mount table.
func mounts() ([]mount, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(string(data)), nil
}

// parseMountinfo reads mountinfo lines: the mount point is the fifth
// field, the filesystem type the first after the " - " separator.
func parseMountinfo(data string) []mount {
	var out []mount
	for _, line := range strings.Split(data, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		m := mount{point: unescapeMount(fields[4])}
		if i := slices.Index(fields, "-"); i >= 0 && i+1 < len(fields) {
			m.fstype = fields[i+1]
		}
		out = append(out, m)
	}
	return out
}

// mountsUnder lists the mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	ms, err := mounts()
	var out []string
	for _, m := range ms {
		if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
			out = append(out, m.point)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, err
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or under dir.
func unmountUnder(dir string) error {
	var errs []error
	for range 3 {
		mps, err := mountsUnder(dir)
		if err != nil {
			return err
		}
		if len(mps) == 0 {
			return nil
		}
		errs = nil
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// LockRealNodes waits until no real node runs on this machine and keeps
// any from starting until the returned release is called; it cleans up
// nothing. Tests hold it to check RealNodeLeftovers without seeing the node
// of a test running in parallel.
func LockRealNodes() (release func(), err error) {
	if err := os.MkdirAll(realNodeStateDir, 0o755); err != nil {
		return nil, err
	}
	return lockFile(filepath.Join(realNodeStateDir, "lock"))
}

// RealNodeLeftovers lists what a real node that used dir left on this
// machine: processes, mounts, cgroups, the bridge, iptables chains, its
// state record and directory. Empty after a clean Stop or a sweep. An
// empty dir (not known) checks all but the directory's processes, mounts
// and existence.
func RealNodeLeftovers(dir string) []string {
	var out []string
	for _, f := range agentLeftovers() {
		out = append(out, "file "+f)
	}
	var entries []os.DirEntry
	if dir != "" {
		entries, _ = os.ReadDir("/proc")
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			out = append(out, "process "+e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	for _, d := range cgroupDirs(realNodeCgroup) {
		out = append(out, "cgroup "+d)
	}
	if dir != "" {
		mps, _ := mountsUnder(dir)
		for _, mp := range mps {
			out = append(out, "mount "+mp)
		}
		if _, err := os.Stat(dir); err == nil {
			out = append(out, "directory "+dir)
		}
	}
	if _, err := net.InterfaceByName(RealNodeBridge); err == nil {
		out = append(out, "bridge "+RealNodeBridge)
	}
	if rules, err := exec.Command("iptables-save").Output(); err == nil {
		for _, l := range strings.Split(string(rules), "\n") {
			if strings.HasPrefix(l, ":KUBE-") {
				out = append(out, "iptables chain "+strings.Fields(l)[0][1:])
			}
		}
	}
	if _, err := os.Stat(filepath.Join(realNodeStateDir, "state.json")); err == nil {
		out = append(out, "state "+filepath.Join(realNodeStateDir, "state.json"))
	}
	if mps, _ := mountsUnder(KubeletRoot); len(mps) > 0 {
		for _, mp := range mps {
			out = append(out, "mount "+mp)
		}
	}
	if _, err := os.Stat(filepath.Join(KubeletRoot, "pods")); err == nil {
		out = append(out, "directory "+filepath.Join(KubeletRoot, "pods"))
	}
	if m, _ := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); len(m) > 0 {
		out = append(out, "CNI cache "+strings.Join(m, " "))
	}
	return out
}
