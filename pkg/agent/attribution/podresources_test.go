package attribution

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
	testingclock "k8s.io/utils/clock/testing"
)

// fakeKubelet serves the PodResources API on a unix socket.
type fakeKubelet struct {
	podresourcesv1.UnimplementedPodResourcesListerServer

	mu   sync.Mutex
	resp *podresourcesv1.ListPodResourcesResponse
	err  error
}

func (k *fakeKubelet) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.resp, k.err
}

// Get answers like the kubelet: the pod from the List answer, or a plain
// error (code Unknown) saying it is not found.
func (k *fakeKubelet) Get(_ context.Context, req *podresourcesv1.GetPodResourcesRequest) (*podresourcesv1.GetPodResourcesResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		return nil, k.err
	}
	for _, p := range k.resp.GetPodResources() {
		if p.GetNamespace() == req.GetPodNamespace() && p.GetName() == req.GetPodName() {
			return &podresourcesv1.GetPodResourcesResponse{PodResources: p}, nil
		}
	}
	return nil, fmt.Errorf("pod %s in namespace %s not found", req.GetPodName(), req.GetPodNamespace())
}

func (k *fakeKubelet) set(resp *podresourcesv1.ListPodResourcesResponse, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.resp, k.err = resp, err
}

// countingListener counts the connections the server accepts.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// socketPath returns a path for a unix socket in a fresh directory, short
// enough for the 108-byte limit on unix socket paths.
func socketPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubelet.sock")
	if len(p) < 100 {
		return p
	}
	dir, err := os.MkdirTemp("", "pr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "kubelet.sock")
}

// serve starts a gRPC server for k on path. Stopping it removes the socket.
func serve(t *testing.T, path string, k *fakeKubelet) (stop func(), l *countingListener) {
	t.Helper()
	inner, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listening on %s: %v", path, err)
	}
	l = &countingListener{Listener: inner}
	srv := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(srv, k)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			srv.Stop()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop, l
}

func newTestClient(t *testing.T, path string, opts ...Option) *PodResourcesClient {
	t.Helper()
	c := NewPodResourcesClient(path, opts...)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func pod(ns, name string, ctrs ...*podresourcesv1.ContainerResources) *podresourcesv1.PodResources {
	return &podresourcesv1.PodResources{Namespace: ns, Name: name, Containers: ctrs}
}

func ctr(name string, devs ...*podresourcesv1.ContainerDevices) *podresourcesv1.ContainerResources {
	return &podresourcesv1.ContainerResources{Name: name, Devices: devs}
}

func devs(resource string, ids ...string) *podresourcesv1.ContainerDevices {
	return &podresourcesv1.ContainerDevices{ResourceName: resource, DeviceIds: ids}
}

func list(pods ...*podresourcesv1.PodResources) *podresourcesv1.ListPodResourcesResponse {
	return &podresourcesv1.ListPodResourcesResponse{PodResources: pods}
}

const (
	uuidA = "GPU-8f3c1c8e-7b7e-4c1a-9f55-0d6a1f0c2a01"
	uuidB = "GPU-8f3c1c8e-7b7e-4c1a-9f55-0d6a1f0c2a02"
	uuidC = "GPU-8f3c1c8e-7b7e-4c1a-9f55-0d6a1f0c2a03"
)

func TestRefreshAttributesDevices(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		resp *podresourcesv1.ListPodResourcesResponse
		want map[string]PodRef
	}{
		{
			name: "two pods with GPUs",
			resp: list(
				pod("ml", "train-0", ctr("trainer", devs("nvidia.com/gpu", uuidA, uuidB))),
				pod("team-b", "infer", ctr("sidecar"), ctr("server", devs("nvidia.com/gpu", uuidC))),
			),
			want: map[string]PodRef{
				uuidA: {Namespace: "ml", Name: "train-0", Container: "trainer"},
				uuidB: {Namespace: "ml", Name: "train-0", Container: "trainer"},
				uuidC: {Namespace: "team-b", Name: "infer", Container: "server"},
			},
		},
		{
			name: "only tracked resources are mapped",
			resp: list(
				pod("ml", "train-0", ctr("trainer",
					devs("nvidia.com/gpu", uuidA),
					devs("gpufleet.io/gpu-milli", uuidB),
					devs("example.com/fpga", "fpga-0"),
				)),
			),
			want: map[string]PodRef{uuidA: {Namespace: "ml", Name: "train-0", Container: "trainer"}},
		},
		{
			name: "resource names from options",
			opts: []Option{WithResourceNames("nvidia.com/gpu", "nvidia.com/mig-1g.10gb")},
			resp: list(
				pod("ml", "a", ctr("c", devs("nvidia.com/gpu", uuidA))),
				pod("ml", "b", ctr("c", devs("nvidia.com/mig-1g.10gb", "MIG-0c2f7d4e-1a2b-5c3d-9e8f-0a1b2c3d4e5f"))),
				pod("ml", "c", ctr("c", devs("example.com/fpga", "fpga-0"))),
			),
			want: map[string]PodRef{
				uuidA: {Namespace: "ml", Name: "a", Container: "c"},
				"MIG-0c2f7d4e-1a2b-5c3d-9e8f-0a1b2c3d4e5f": {Namespace: "ml", Name: "b", Container: "c"},
			},
		},
		{
			name: "device IDs that are indexes stay strings",
			resp: list(pod("ml", "a", ctr("c", devs("nvidia.com/gpu", "0", "3")))),
			want: map[string]PodRef{
				"0": {Namespace: "ml", Name: "a", Container: "c"},
				"3": {Namespace: "ml", Name: "a", Container: "c"},
			},
		},
		{
			name: "device reported for two pods is not attributed",
			resp: list(
				pod("ml", "a", ctr("c", devs("nvidia.com/gpu", uuidA, uuidB))),
				pod("ml", "b", ctr("c", devs("nvidia.com/gpu", uuidA))),
				pod("ml", "c", ctr("c", devs("nvidia.com/gpu", uuidA))),
			),
			want: map[string]PodRef{uuidB: {Namespace: "ml", Name: "a", Container: "c"}},
		},
		{
			name: "device reported for two containers of one pod keeps the pod",
			resp: list(pod("ml", "a", ctr("c1", devs("nvidia.com/gpu", uuidA)), ctr("c2", devs("nvidia.com/gpu", uuidA)))),
			want: map[string]PodRef{uuidA: {Namespace: "ml", Name: "a"}},
		},
		{
			name: "node without pods",
			resp: list(),
			want: map[string]PodRef{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := socketPath(t)
			serve(t, path, &fakeKubelet{resp: tc.resp})
			c := newTestClient(t, path, tc.opts...)
			if err := c.Refresh(t.Context()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			got := map[string]PodRef{}
			for _, id := range []string{uuidA, uuidB, uuidC, "0", "3", "fpga-0", "MIG-0c2f7d4e-1a2b-5c3d-9e8f-0a1b2c3d4e5f"} {
				if ref, ok := c.Lookup(id); ok {
					got[id] = ref
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Lookup results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, c.snap.Load().devices); diff != "" {
				t.Errorf("device map (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRefreshErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, path string) *PodResourcesClient
		wantIn   []string
		wantIsNX bool
	}{
		{
			name: "missing socket",
			setup: func(t *testing.T, path string) *PodResourcesClient {
				return newTestClient(t, path)
			},
			wantIn:   []string{"kubelet pod-resources socket", "not found", "is the hostPath", "mounted"},
			wantIsNX: true,
		},
		{
			name: "kubelet fails",
			setup: func(t *testing.T, path string) *PodResourcesClient {
				serve(t, path, &fakeKubelet{err: status.Error(codes.Internal, "device manager not ready")})
				return newTestClient(t, path)
			},
			wantIn: []string{"listing pod resources from the kubelet", "device manager not ready", "is the kubelet running"},
		},
		{
			name: "socket left behind by a dead kubelet",
			setup: func(t *testing.T, path string) *PodResourcesClient {
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				l.SetUnlinkOnClose(false)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				c := newTestClient(t, path)
				c.callTimeout = 200 * time.Millisecond
				return c
			},
			wantIn: []string{"listing pod resources from the kubelet", "is the kubelet running"},
		},
		{
			name: "closed client",
			setup: func(t *testing.T, path string) *PodResourcesClient {
				serve(t, path, &fakeKubelet{resp: list()})
				c := newTestClient(t, path)
				if err := c.Refresh(t.Context()); err != nil {
					t.Fatalf("Refresh before Close: %v", err)
				}
				if err := c.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				return c
			},
			wantIn: []string{"closed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := socketPath(t)
			c := tc.setup(t, path)
			err := c.Refresh(t.Context())
			if err == nil {
				t.Fatal("Refresh succeeded, want an error")
			}
			for _, s := range tc.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tc.wantIsNX {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tc.wantIsNX)
			}
			if _, ok := c.Lookup(uuidA); ok {
				t.Error("Lookup answered after a failed Refresh")
			}
		})
	}
}

func TestStaleCacheIsEmpty(t *testing.T) {
	path := socketPath(t)
	stop, _ := serve(t, path, &fakeKubelet{resp: list(pod("ml", "a", ctr("c", devs("nvidia.com/gpu", uuidA))))})
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := testingclock.NewFakeClock(start)
	c := newTestClient(t, path, WithClock(clk.Now), WithMaxStaleness(30*time.Second))

	if _, ok := c.Lookup(uuidA); ok {
		t.Error("Lookup answered before any Refresh")
	}
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	want := PodRef{Namespace: "ml", Name: "a", Container: "c"}
	if got, ok := c.Lookup(uuidA); !ok || got != want {
		t.Fatalf("Lookup = %+v, %v; want %+v, true", got, ok, want)
	}

	stop()
	clk.Step(10 * time.Second)
	if err := c.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded with the kubelet stopped")
	}
	if got, ok := c.Lookup(uuidA); !ok || got != want {
		t.Errorf("within max staleness: Lookup = %+v, %v; want %+v, true", got, ok, want)
	}

	clk.Step(20*time.Second + time.Nanosecond)
	if got, ok := c.Lookup(uuidA); ok {
		t.Errorf("past max staleness: Lookup = %+v, true; want false", got)
	}

	refreshes, failures, last := c.Stats()
	if refreshes != 2 || failures != 1 || !last.Equal(start) {
		t.Errorf("Stats() = %d, %d, %v; want 2, 1, %v", refreshes, failures, last, start)
	}
}

func TestSocketAppearsAfterFailedRefresh(t *testing.T) {
	path := socketPath(t)
	c := newTestClient(t, path)
	if err := c.Refresh(t.Context()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Refresh without socket: err = %v, want a not-found error", err)
	}
	serve(t, path, &fakeKubelet{resp: list(pod("ml", "a", ctr("c", devs("nvidia.com/gpu", uuidA))))})
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh after the socket appeared: %v", err)
	}
	if _, ok := c.Lookup(uuidA); !ok {
		t.Error("Lookup after the socket appeared: not found")
	}
}

func TestKubeletRestart(t *testing.T) {
	path := socketPath(t)
	stop, _ := serve(t, path, &fakeKubelet{resp: list(pod("ml", "old", ctr("c", devs("nvidia.com/gpu", uuidA))))})
	c := newTestClient(t, path)
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("first Refresh: %v", err)
	}
	stop()
	if err := c.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded with the kubelet stopped")
	}
	serve(t, path, &fakeKubelet{resp: list(pod("ml", "new", ctr("c", devs("nvidia.com/gpu", uuidA))))})
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh after the kubelet restarted: %v", err)
	}
	want := PodRef{Namespace: "ml", Name: "new", Container: "c"}
	if got, ok := c.Lookup(uuidA); !ok || got != want {
		t.Errorf("Lookup = %+v, %v; want %+v, true", got, ok, want)
	}
}

func TestRefreshReusesOneConnection(t *testing.T) {
	path := socketPath(t)
	k := &fakeKubelet{resp: list(pod("ml", "a", ctr("c", devs("nvidia.com/gpu", uuidA))))}
	_, l := serve(t, path, k)
	c := newTestClient(t, path)
	const n = 50
	for i := range n {
		if err := c.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh %d: %v", i, err)
		}
	}
	if got := l.accepted.Load(); got != 1 {
		t.Errorf("server accepted %d connections over %d refreshes, want 1", got, n)
	}
	if refreshes, failures, _ := c.Stats(); refreshes != n || failures != 0 {
		t.Errorf("Stats() = %d refreshes, %d failures; want %d, 0", refreshes, failures, n)
	}
}

// TestLookupDuringRefresh is meant for -race: lookups run while the map is
// replaced, and always see one whole snapshot.
func TestLookupDuringRefresh(t *testing.T) {
	path := socketPath(t)
	k := &fakeKubelet{}
	serve(t, path, k)
	c := newTestClient(t, path)
	refA := PodRef{Namespace: "ml", Name: "a", Container: "c"}
	refB := PodRef{Namespace: "ml", Name: "b", Container: "c"}
	// Both devices always belong to the same pod, so a lookup that mixes two
	// snapshots would see them disagree.
	respA := list(pod("ml", "a", ctr("c", devs("nvidia.com/gpu", uuidA, uuidB))))
	respB := list(pod("ml", "b", ctr("c", devs("nvidia.com/gpu", uuidA, uuidB))))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	var lookups atomic.Int64
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				s := c.snap.Load()
				if s == nil {
					continue
				}
				a, b := s.devices[uuidA], s.devices[uuidB]
				if a != b || (a != refA && a != refB) {
					t.Errorf("inconsistent snapshot: %+v, %+v", a, b)
					return
				}
				c.Lookup(uuidA)
				c.Stats()
				lookups.Add(1)
			}
		})
	}
	for i := range 100 {
		resp := respA
		if i%2 == 1 {
			resp = respB
		}
		k.set(resp, nil)
		if err := c.Refresh(ctx); err != nil {
			t.Fatalf("Refresh %d: %v", i, err)
		}
	}
	cancel()
	wg.Wait()
	if lookups.Load() == 0 {
		t.Error("no lookups ran during the refreshes")
	}
}

// Get reads one pod; a pod the kubelet does not have is ErrPodNotListed,
// other failures are not.
func TestGetOnePod(t *testing.T) {
	path := socketPath(t)
	k := &fakeKubelet{}
	k.set(list(
		pod("ml", "a", ctr("main", devs(DefaultResourceName, uuidA))),
		pod("ml", "b", ctr("main", devs(DefaultResourceName, uuidB))),
	), nil)
	serve(t, path, k)
	c := newTestClient(t, path)
	got, err := c.Get(context.Background(), "ml", "b")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetName() != "b" || got.GetContainers()[0].GetDevices()[0].GetDeviceIds()[0] != uuidB {
		t.Errorf("Get(ml/b) = %v", got)
	}
	if _, err := c.Get(context.Background(), "ml", "gone"); !errors.Is(err, ErrPodNotListed) || !strings.Contains(err.Error(), "ml/gone") {
		t.Errorf("Get of a pod the kubelet lacks: %v, want ErrPodNotListed naming ml/gone", err)
	}
	k.set(nil, status.Error(codes.PermissionDenied, "no"))
	if _, err := c.Get(context.Background(), "ml", "a"); err == nil || errors.Is(err, ErrPodNotListed) {
		t.Errorf("Get while the kubelet refuses: %v, want an error that is not ErrPodNotListed", err)
	}
}
