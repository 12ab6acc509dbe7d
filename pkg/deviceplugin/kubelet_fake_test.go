package deviceplugin

import (
	"context"
	"fmt"
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
	// seq is the number of the RegisterRequest that made it.
	seq     int
	conn    *grpc.ClientConn
	client  pluginapi.DevicePluginClient
	cancel  context.CancelFunc
	options *pluginapi.DevicePluginOptions
	// devices is the latest ListAndWatch list; lists counts the lists.
	devices []*pluginapi.Device
	lists   int
	// ended says the stream ended.
	ended bool
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
		k.removePluginSockets(t)
	}
	k.serve(t, l)
}

// removePluginSockets removes every socket in the directory but the
// kubelet's.
func (k *fakeKubelet) removePluginSockets(t *testing.T) {
	t.Helper()
	socks, err := filepath.Glob(filepath.Join(k.dir, "*.sock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range socks {
		if s == k.socket() {
			continue
		}
		if err := os.Remove(s); err != nil {
			t.Fatalf("fake kubelet: removing %s: %v", s, err)
		}
	}
}

// Register is the kubelet's Registration service: it connects to the
// plugin's endpoint (the kubelet joins it to its directory), asks for its
// options and follows its device list.
func (k *fakeKubelet) Register(ctx context.Context, r *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	k.mu.Lock()
	k.requests = append(k.requests, r)
	seq := len(k.requests) - 1
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
	ep := &endpoint{seq: seq, conn: conn, client: client, cancel: wcancel, options: opts}
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
	defer func() {
		k.mu.Lock()
		ep.ended = true
		k.mu.Unlock()
	}()
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

// waitRegistered waits until exactly resources registered after the first
// n requests and the kubelet has a device list through each such
// registration's connection.
func (k *fakeKubelet) waitRegistered(t *testing.T, n int, resources ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(resources))
	eventually(t, fmt.Sprintf("registration of %v", want), func() bool {
		if !slices.Equal(k.registeredSince(n), want) {
			return false
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, res := range resources {
			if ep := k.endpoints[res]; ep == nil || ep.seq < n || ep.lists == 0 {
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

// streamsEnded says whether every plugin's ListAndWatch stream ended.
func (k *fakeKubelet) streamsEnded() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, ep := range k.endpoints {
		if !ep.ended {
			return false
		}
	}
	return true
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
