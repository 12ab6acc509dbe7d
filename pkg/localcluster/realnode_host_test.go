package localcluster

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestHostFactsCheck: a machine that cannot run a real node gets one
// message naming everything it lacks and how to get it.
func TestHostFactsCheck(t *testing.T) {
	ok := hostFacts{os: "linux", root: true, overlay: true, cgroups: true}
	if err := ok.check(); err != nil {
		t.Errorf("a capable machine: %v", err)
	}
	if err := (hostFacts{os: "darwin"}).check(); err == nil || !strings.Contains(err.Error(), "needs Linux") {
		t.Errorf("macOS: %v", err)
	}
	bad := hostFacts{os: "linux", missingPackages: []string{"runc", "containernetworking-plugins", "runc"}, addressErr: errors.New("a non-loopback IPv4 address")}
	err := bad.check()
	if err == nil {
		t.Fatal("a machine lacking everything passed")
	}
	for _, want := range []string{"run as root", "runc, containernetworking-plugins (make deps installs them)", "modprobe overlay", "cgroup controllers", "non-loopback IPv4"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if strings.Count(err.Error(), "runc") != 1 {
		t.Errorf("a package named twice: %v", err)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/var/lib/kubelet/pods/x`:  "/var/lib/kubelet/pods/x",
		`/tmp/a\040b`:              "/tmp/a b",
		`/tmp/tab\011and\134slash`: "/tmp/tab\tand\\slash",
		`/tmp/trailing\`:           `/tmp/trailing\`,
		`/tmp/short\04`:            `/tmp/short\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigsUseTheNodesPaths: every state path of containerd's config is
// under the node's directory (cleanup finds what it holds), and the CNI
// network routes only the Service network and the node's address.
func TestConfigsUseTheNodesPaths(t *testing.T) {
	p := newRealNodePaths("/tmp/gpufleet-cp-1/node-x")
	p.runc = "/usr/sbin/runc"
	cfg := containerdConfig(p)
	for _, want := range []string{`root = "/tmp/gpufleet-cp-1/node-x/containerd/root"`, `state = "/tmp/gpufleet-cp-1/node-x/containerd/state"`,
		`address = "/tmp/gpufleet-cp-1/node-x/containerd/containerd.sock"`, `Root = "/tmp/gpufleet-cp-1/node-x/runc"`,
		`sandbox = "` + PauseImage + `"`, "restrict_oom_score_adj = true", "netns_mounts_under_state_dir = true"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("containerd config lacks %s:\n%s", want, cfg)
		}
	}
	cni := cniConfig(p, "192.0.2.2")
	for _, want := range []string{`"ipMasq": false`, `"dst": "` + ServiceCIDR + `"`, `"dst": "192.0.2.2/32"`, `"dataDir": "/tmp/gpufleet-cp-1/node-x/cni/ipam"`} {
		if !strings.Contains(cni, want) {
			t.Errorf("CNI config lacks %s:\n%s", want, cni)
		}
	}
	if strings.Contains(cni, "0.0.0.0/0") {
		t.Errorf("CNI config gives pods a default route:\n%s", cni)
	}
}

// FuzzUnescapeMount: any mountinfo field decodes without a panic and never
// grows (an escape is four bytes for one).
func FuzzUnescapeMount(f *testing.F) {
	for _, s := range []string{`/a\040b`, `\`, `\777`, `\0`, `/x\134\134`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeMount(s); len(got) > len(s) {
			t.Errorf("unescapeMount(%q) = %q grew", s, got)
		}
	})
}

func TestParseMountinfo(t *testing.T) {
	got := parseMountinfo(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
40 31 0:36 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
71 60 0:50 / /tmp/a\040b rw - overlay overlay rw

short line
`)
	want := []mount{{"/sys/fs/cgroup", "tmpfs"}, {"/sys/fs/cgroup/cpu,cpuacct", "cgroup"}, {"/sys/fs/cgroup/unified", "cgroup2"}, {"/tmp/a b", "overlay"}}
	if !slices.Equal(got, want) {
		t.Errorf("parseMountinfo = %v, want %v", got, want)
	}
}
