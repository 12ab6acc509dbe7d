package deviceplugin

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// kubeletSocketName is the kubelet's registration socket in the device
// plugin directory.
const kubeletSocketName = "kubelet.sock"

// callTimeout bounds one call the fake kubelet makes to the plugin.
const callTimeout = 10 * time.Second

// fakeKubelet plays the kubelet's device manager against the plugin over
// real gRPC on unix sockets: it serves the Registration service on
// <dir>/kubelet.sock, dials each plugin that registers, asks for its options,
// follows its ListAndWatch stream, and keeps the kubelet's record of the
// device IDs it has given out.
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	dir string

	mu        sync.Mutex
	srv       *grpc.Server
	requests  []*pluginapi.RegisterRequest
	endpoints map[string]*endpoint
	// inUse is the kubelet's allocatedDevices: the IDs it gave out, by
	// resource.
	inUse map[string]map[string]bool
	// watchers are the ListAndWatch goroutines.
	watchers sync.WaitGroup
}

// endpoint is the kubelet's connection to one registered resource.
type endpoint struct {
	conn    *grpc.ClientConn
	client  pluginapi.DevicePluginClient
	cancel  context.CancelFunc
	options *pluginapi.DevicePluginOptions
	// devices is the latest ListAndWatch list; lists counts the lists.
	devices []*pluginapi.Device
	lists   int
}

// startFakeKubelet serves the Registration service on dir/kubelet.sock
// until the test ends.
func startFakeKubelet(t *testing.T, dir string) *fakeKubelet {
	t.Helper()
	k := &fakeKubelet{dir: dir, endpoints: map[string]*endpoint{}, inUse: map[string]map[string]bool{}}
	k.serve(t, k.listen(t))
	t.Cleanup(k.stop)
	return k
}

func (k *fakeKubelet) socket() string { return filepath.Join(k.dir, kubeletSocketName) }

// listen opens a registration socket beside kubelet.sock; serve moves it
// into place. Creating it while the old socket still exists guarantees a
// new inode, as a restarted kubelet's socket has.
func (k *fakeKubelet) listen(t *testing.T) *net.UnixListener {
	t.Helper()
	path := filepath.Join(k.dir, "kubelet.new")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("fake kubelet: listening on %s: %v", path, err)
	}
	ul := l.(*net.UnixListener)
	// The socket is renamed; stop removes it by its final name.
	ul.SetUnlinkOnClose(false)
	return ul
}

func (k *fakeKubelet) serve(t *testing.T, l *net.UnixListener) {
	t.Helper()
	if err := os.Rename(l.Addr().String(), k.socket()); err != nil {
		t.Fatalf("fake kubelet: %v", err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, k)
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// stop stops the registration server, drops the connections to the plugins
// and removes kubelet.sock, as a kubelet that exits does.
func (k *fakeKubelet) stop() {
	k.mu.Lock()
	srv := k.srv
	k.srv = nil
	k.mu.Unlock()
	if srv != nil {
		// Lets a Register in flight finish, so its connection is dropped below.
		srv.GracefulStop()
	}
	k.mu.Lock()
	for res, ep := range k.endpoints {
		ep.cancel()
		_ = ep.conn.Close()
		delete(k.endpoints, res)
	}
	k.mu.Unlock()
	k.watchers.Wait()
	_ = os.Remove(k.socket())
}

// restart replaces the kubelet: the old one exits, and the new one removes
// the plugins' sockets (as a starting kubelet empties its device-plugin
// directory, unless keepPluginSockets) and serves a registration socket
// with a new inode. The kubelet's record of given-out devices survives, as
// its checkpoint does.
func (k *fakeKubelet) restart(t *testing.T, keepPluginSockets bool) {
	t.Helper()
	l := k.listen(t)
	k.stop()
	if !keepPluginSockets {
		socks, err := filepath.Glob(filepath.Join(k.dir, "*.sock"))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range socks {
			if err := os.Remove(s); err != nil {
				t.Fatalf("fake kubelet: removing %s: %v", s, err)
			}
		}
	}
	k.serve(t, l)
}

// Register is the kubelet's Registration service: it connects to the
// plugin's endpoint (the kubelet joins it to its directory), asks for its
// options and follows its device list.
func (k *fakeKubelet) Register(ctx context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.mu.Lock()
	k.requests = append(k.requests, r)
	k.mu.Unlock()
	conn, err := grpc.NewClient("unix://"+filepath.Join(k.dir, r.GetEndpoint()), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("fake kubelet: dialing %q: %w", r.GetEndpoint(), err)
	}
	client := pluginapi.NewDevicePluginClient(conn)
	octx, cancel := context.WithTimeout(ctx, callTimeout)
	opts, err := client.GetDevicePluginOptions(octx, &pluginapi.Empty{})
	cancel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("fake kubelet: GetDevicePluginOptions on %q: %w", r.GetEndpoint(), err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	ep := &endpoint{conn: conn, client: client, cancel: wcancel, options: opts}
	k.mu.Lock()
	if old := k.endpoints[r.GetResourceName()]; old != nil {
		old.cancel()
		_ = old.conn.Close()
	}
	k.endpoints[r.GetResourceName()] = ep
	k.watchers.Add(1)
	k.mu.Unlock()
	go k.watch(wctx, ep)
	return &pluginapi.Empty{}, nil
}

// watch follows the plugin's ListAndWatch stream until it ends.
func (k *fakeKubelet) watch(ctx context.Context, ep *endpoint) {
	defer k.watchers.Done()
	stream, err := ep.client.ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		return
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return
		}
		k.mu.Lock()
		ep.devices = resp.GetDevices()
		ep.lists++
		k.mu.Unlock()
	}
}

// registrations returns the RegisterRequests received so far.
func (k *fakeKubelet) registrations() []*pluginapi.RegisterRequest {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.requests)
}

// registeredSince returns the resources registered after the first n
// requests.
func (k *fakeKubelet) registeredSince(n int) []string {
	var out []string
	for _, r := range k.registrations()[n:] {
		out = append(out, r.GetResourceName())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// waitRegistered waits until every resource registered after the first n
// requests and the kubelet has its device list from that registration.
func (k *fakeKubelet) waitRegistered(t *testing.T, n int, resources ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(resources))
	eventually(t, fmt.Sprintf("registration of %v", want), func() bool {
		if !slices.Equal(k.registeredSince(n), want) {
			return false
		}
		for _, res := range resources {
			if _, lists := k.devices(res); lists == 0 {
				return false
			}
		}
		return true
	})
}

// devices returns the latest device list of resource and how many lists
// the current connection received.
func (k *fakeKubelet) devices(resource string) ([]*pluginapi.Device, int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	ep := k.endpoints[resource]
	if ep == nil {
		return nil, 0
	}
	return ep.devices, ep.lists
}

// options returns what GetDevicePluginOptions answered for resource.
func (k *fakeKubelet) options(resource string) *pluginapi.DevicePluginOptions {
	k.mu.Lock()
	defer k.mu.Unlock()
	if ep := k.endpoints[resource]; ep != nil {
		return ep.options
	}
	return nil
}

// waitDevices waits until resource's device list satisfies ok.
func (k *fakeKubelet) waitDevices(t *testing.T, resource, what string, ok func([]*pluginapi.Device) bool) []*pluginapi.Device {
	t.Helper()
	var devs []*pluginapi.Device
	eventually(t, what, func() bool {
		devs, _ = k.devices(resource)
		return devs != nil && ok(devs)
	})
	return devs
}

func (k *fakeKubelet) client(t *testing.T, resource string) pluginapi.DevicePluginClient {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	ep := k.endpoints[resource]
	if ep == nil {
		t.Fatalf("fake kubelet: no plugin registered %s", resource)
	}
	return ep.client
}

// available returns the healthy IDs of resource the kubelet has not given
// out.
func (k *fakeKubelet) available(resource string) map[string]bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]bool{}
	if ep := k.endpoints[resource]; ep != nil {
		for _, d := range ep.devices {
			if d.GetHealth() == pluginapi.Healthy && !k.inUse[resource][d.GetID()] {
				out[d.GetID()] = true
			}
		}
	}
	return out
}

// take records ids of resource as given out; give returns them.
func (k *fakeKubelet) take(resource string, ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inUse[resource] == nil {
		k.inUse[resource] = map[string]bool{}
	}
	for _, id := range ids {
		k.inUse[resource][id] = true
	}
}

func (k *fakeKubelet) give(resource string, ids []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range ids {
		delete(k.inUse[resource], id)
	}
}

// preferred calls GetPreferredAllocation for one container.
func (k *fakeKubelet) preferred(t *testing.T, resource string, available, mustInclude []string, size int) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	resp, err := k.client(t, resource).GetPreferredAllocation(ctx, &pluginapi.PreferredAllocationRequest{
		ContainerRequests: []*pluginapi.ContainerPreferredAllocationRequest{{
			AvailableDeviceIDs: available, MustIncludeDeviceIDs: mustInclude, AllocationSize: int32(size),
		}},
	})
	if err != nil {
		return nil, err
	}
	if n := len(resp.GetContainerResponses()); n != 1 {
		t.Fatalf("GetPreferredAllocation answered %d containers for 1", n)
	}
	return resp.GetContainerResponses()[0].GetDeviceIDs(), nil
}

// allocate calls Allocate with one container request per ID list.
func (k *fakeKubelet) allocate(t *testing.T, resource string, ids ...[]string) ([]*pluginapi.ContainerAllocateResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	req := &pluginapi.AllocateRequest{}
	for _, c := range ids {
		req.ContainerRequests = append(req.ContainerRequests, &pluginapi.ContainerAllocateRequest{DevicesIds: c})
	}
	resp, err := k.client(t, resource).Allocate(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(resp.GetContainerResponses()) != len(ids) {
		t.Fatalf("Allocate answered %d containers for %d", len(resp.GetContainerResponses()), len(ids))
	}
	return resp.GetContainerResponses(), nil
}

// preStart calls PreStartContainer for a container holding ids.
func (k *fakeKubelet) preStart(t *testing.T, resource string, ids []string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	_, err := k.client(t, resource).PreStartContainer(ctx, &pluginapi.PreStartContainerRequest{DevicesIds: ids})
	return err
}

// containerAlloc is what the fake kubelet did for one container.
type containerAlloc struct {
	resource string
	// asked says whether the kubelet called GetPreferredAllocation (not
	// when devices reused from init containers cover the request).
	asked       bool
	mustInclude []string
	preferred   []string
	// devices are the IDs the container got; resp is Allocate's answer.
	devices []string
	resp    *pluginapi.ContainerAllocateResponse
}

// allocateContainer gives a container size IDs of resource as the kubelet's
// device manager does (devicesToAllocate): reusable IDs of the pod's init
// containers first; then it asks the plugin's preference among the
// available IDs, takes the preferred ones and fills up in the kubelet's
// arbitrary (map) order; then it records the IDs as given out and calls
// Allocate.
func (k *fakeKubelet) allocateContainer(t *testing.T, resource string, size int, reusable map[string]bool) (*containerAlloc, error) {
	t.Helper()
	a := &containerAlloc{resource: resource}
	var devices []string
	for id := range reusable {
		if len(devices) == size {
			break
		}
		devices = append(devices, id)
	}
	var taken []string
	if len(devices) < size {
		avail := k.available(resource)
		if len(avail) < size-len(devices) {
			return nil, fmt.Errorf("requested number of devices unavailable for %s. Requested: %d, Available: %d", resource, size-len(devices), len(avail))
		}
		offer := append(slices.Collect(maps.Keys(avail)), devices...)
		a.asked, a.mustInclude = true, slices.Clone(devices)
		pref, err := k.preferred(t, resource, offer, a.mustInclude, size)
		if err != nil {
			return nil, err
		}
		a.preferred = pref
		for _, id := range pref {
			if len(devices) < size && avail[id] && !slices.Contains(devices, id) {
				devices, taken = append(devices, id), append(taken, id)
			}
		}
		for id := range avail {
			if len(devices) == size {
				break
			}
			if !slices.Contains(devices, id) {
				devices, taken = append(devices, id), append(taken, id)
			}
		}
	}
	k.take(resource, taken)
	resps, err := k.allocate(t, resource, devices)
	if err != nil {
		k.give(resource, taken)
		return nil, err
	}
	a.devices, a.resp = devices, resps[0]
	return a, nil
}
