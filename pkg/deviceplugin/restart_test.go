package deviceplugin

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPluginReRegistersWhenTheKubeletRestarts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart func(t *testing.T, k *fakeKubelet)
	}{
		{
			name:    "new kubelet socket, plugin sockets removed",
			restart: func(t *testing.T, k *fakeKubelet) { k.restart(t, false) },
		},
		{
			// Only the registration socket's new inode tells the plugin.
			name:    "new kubelet socket, plugin sockets kept",
			restart: func(t *testing.T, k *fakeKubelet) { k.restart(t, true) },
		},
		{
			// A new kubelet socket may get the old one's inode number back;
			// then only the removed plugin sockets tell the plugin.
			name:    "plugin sockets removed, kubelet socket's identity kept",
			restart: func(t *testing.T, k *fakeKubelet) { k.removePluginSockets(t) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t)
			n := len(h.kubelet.registrations())

			tc.restart(t, h.kubelet)
			h.kubelet.waitRegistered(t, n, ResourceMilli, ResourceWhole)

			for _, res := range []string{ResourceMilli, ResourceWhole} {
				if got := metric(t, h.plugin, "gpufleet_deviceplugin_registrations_total", "resource", res); got < 2 {
					t.Errorf("registrations_total{resource=%q} = %v, want at least 2", res, got)
				}
			}
			// The kubelet can admit pods through its new connections.
			pod := newPod("infer").on("3").app("main", ResourceMilli, 250).obj()
			allocs := h.mustAdmit(pod)
			checkSteered(t, pod, allocs)
			for name, err := range h.preStart(allocs) {
				t.Errorf("PreStartContainer for %s: %v", name, err)
			}
		})
	}
}

func TestRestartedKubeletSocketHasANewInode(t *testing.T) {
	k := startFakeKubelet(t, socketDir(t))
	before := fileInode(t, k.socket())
	k.restart(t, false)
	if fileInode(t, k.socket()) == before {
		t.Fatal("the fake kubelet's restart kept its socket's inode; the restart tests would not test what they say")
	}
}

func fileInode(t *testing.T, path string) uint64 {
	t.Helper()
	id, err := fileID(path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRunEndsCleanlyWhenItsContextEnds(t *testing.T) {
	h := start(t)
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v, want nil after its context ends", err)
	}
	if socks, _ := filepath.Glob(filepath.Join(h.dir, "gpufleet-*.sock")); len(socks) != 0 {
		t.Errorf("plugin sockets left behind: %v", socks)
	}
	if !isSocket(filepath.Join(h.dir, kubeletSocketName)) {
		t.Error("the kubelet's socket was removed")
	}
	eventually(t, "the kubelet's ListAndWatch streams to end", h.kubelet.streamsEnded)
}

func TestPluginWaitsForTheKubelet(t *testing.T) {
	dir := socketDir(t)
	cfg := Config{
		NodeName: testNode, GPUs: dgx1(), Milli: true, Whole: true, Dir: dir,
		PodResources: &fakePodResources{}, Pods: &fakePods{},
	}
	t.Run("kubelet comes up later", func(t *testing.T) {
		runPlugin(t, cfg)
		// Without a kubelet the plugin serves nothing. (A pause long
		// enough for the plugin to look twice, not a wait for a condition.)
		time.Sleep(2 * watchEvery)
		if socks, _ := filepath.Glob(filepath.Join(dir, "*.sock")); len(socks) != 0 {
			t.Errorf("sockets %v before the kubelet runs", socks)
		}
		k := startFakeKubelet(t, dir)
		k.waitRegistered(t, 0, ResourceMilli, ResourceWhole)
	})
	t.Run("stopped before the kubelet comes", func(t *testing.T) {
		_, stop := runPlugin(t, Config{
			NodeName: testNode, GPUs: dgx1(), Milli: true, Dir: socketDir(t),
			PodResources: &fakePodResources{}, Pods: &fakePods{},
		})
		if err := stop(); err != nil {
			t.Errorf("Run: %v, want nil after its context ends", err)
		}
	})
}

// A restarted plugin keeps no state of its own: it reads every allocation
// from pod-resources, so it steers new pods around the old ones.
func TestNewPluginOnTheSameDirectorySteersAroundExistingAllocations(t *testing.T) {
	h := start(t)
	notebook := newPod("notebook").on("1").app("main", ResourceMilli, 500).obj()
	notebookAllocs := h.mustAdmit(notebook)
	h.mustAdmit(newPod("trainer").on("6,7").app("main", ResourceWhole, 2).obj())
	n := len(h.kubelet.registrations())

	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.plugin, h.stop = runPlugin(t, h.cfg)
	h.kubelet.waitRegistered(t, n, ResourceMilli, ResourceWhole)

	// The other half of the notebook's GPU.
	infer := newPod("infer").on("1").app("main", ResourceMilli, 500).obj()
	allocs := h.mustAdmit(infer)
	checkSteered(t, infer, allocs)
	if overlap := slices.ContainsFunc(allocs["main"].devices, func(id string) bool {
		return slices.Contains(notebookAllocs["main"].devices, id)
	}); overlap {
		t.Error("the new pod got device IDs the notebook holds")
	}

	// A share of a GPU the trainer holds whole is refused.
	_, err := h.admit(newPod("infer-2").on("6").app("main", ResourceMilli, 250).obj())
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("share of GPU 6, given out whole: error %v, want code FailedPrecondition", err)
	}

	// Whole GPUs of the plugin's choice avoid both.
	adhoc := h.mustAdmit(newPod("adhoc").app("main", ResourceWhole, 2).obj())
	for _, g := range gpuIndices(ResourceWhole, adhoc["main"].devices) {
		if g == 1 || g == 6 || g == 7 {
			t.Errorf("pod without annotation got GPU %d, which is shared or given out", g)
		}
	}

	// The new plugin checks the containers started before it.
	for name, err := range h.preStart(notebookAllocs) {
		t.Errorf("PreStartContainer for the notebook's %s: %v", name, err)
	}
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_verified_containers_total", "resource", ResourceMilli); got != 1 {
		t.Errorf("verified_containers_total = %v, want 1", got)
	}
}
