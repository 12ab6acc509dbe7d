package attribution

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

const (
	// DefaultPodResourcesSocket is where the kubelet serves the PodResources
	// API. The DaemonSet mounts /var/lib/kubelet/pod-resources as a hostPath.
	DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	// DefaultResourceName is the extended resource whose devices are
	// attributed unless WithResourceNames says otherwise.
	DefaultResourceName = "nvidia.com/gpu"
	// DefaultMaxStaleness is how long a successful Refresh stays valid.
	DefaultMaxStaleness = 30 * time.Second

	podResourcesCallTimeout = 2 * time.Second
	// podResourcesMaxMsgSize matches the kubelet's own client: a node with
	// hundreds of pods overflows gRPC's 4 MiB default.
	podResourcesMaxMsgSize = 16 << 20
)

// Option configures a PodResourcesClient.
type Option func(*PodResourcesClient)

// WithResourceNames sets the extended resource names whose device IDs are
// mapped to pods; devices of other resources are ignored.
func WithResourceNames(names ...string) Option {
	return func(c *PodResourcesClient) {
		c.resources = make(map[string]bool, len(names))
		for _, n := range names {
			c.resources[n] = true
		}
	}
}

// WithMaxStaleness sets how long after the last successful Refresh Lookup
// still answers; after that the cache counts as empty.
func WithMaxStaleness(d time.Duration) Option {
	return func(c *PodResourcesClient) { c.maxStaleness = d }
}

// WithClock sets the source of the current time (for tests).
func WithClock(now func() time.Time) Option {
	return func(c *PodResourcesClient) { c.now = now }
}

// PodResourcesClient maps device IDs to the pods the kubelet allocated them
// to, from the kubelet PodResources API v1. It holds one gRPC connection for
// its lifetime. Refresh and Close may be called from any goroutine; Lookup
// never blocks on a Refresh.
type PodResourcesClient struct {
	socket       string
	resources    map[string]bool
	maxStaleness time.Duration
	now          func() time.Time
	callTimeout  time.Duration

	// mu serializes Refresh and Close, and guards conn, client, closed and
	// lastFailed.
	mu         sync.Mutex
	conn       *grpc.ClientConn
	client     podresourcesv1.PodResourcesListerClient
	closed     bool
	lastFailed bool

	snap      atomic.Pointer[deviceSnapshot]
	refreshes atomic.Uint64
	failures  atomic.Uint64
}

// deviceSnapshot is the result of one successful Refresh; it is never
// modified after it is published.
type deviceSnapshot struct {
	devices map[string]PodRef
	at      time.Time
}

// NewPodResourcesClient returns a client for the kubelet PodResources socket
// at socketPath (DefaultPodResourcesSocket if empty). It does not connect:
// the connection is made by the first Refresh and reused after that.
func NewPodResourcesClient(socketPath string, opts ...Option) *PodResourcesClient {
	if socketPath == "" {
		socketPath = DefaultPodResourcesSocket
	}
	c := &PodResourcesClient{
		socket:       socketPath,
		maxStaleness: DefaultMaxStaleness,
		now:          time.Now,
		callTimeout:  podResourcesCallTimeout,
	}
	WithResourceNames(DefaultResourceName)(c)
	for _, o := range opts {
		o(c)
	}
	return c
}

// Refresh lists the pod resources from the kubelet and replaces the device
// map. On error the previous map is kept, and ages out after the maximum
// staleness; the next Refresh tries again, so a socket that appears later, or
// a kubelet that restarts, needs no restart of the agent.
func (c *PodResourcesClient) Refresh(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshes.Add(1)
	resp, err := c.listLocked(ctx)
	if err != nil {
		c.failures.Add(1)
		c.lastFailed = true
		return err
	}
	c.lastFailed = false
	devices := deviceMap(logger, resp.GetPodResources(), c.resources)
	c.snap.Store(&deviceSnapshot{devices: devices, at: c.now()})
	logger.V(5).Info("Refreshed pod resources", "socket", c.socket, "devices", len(devices))
	return nil
}

// List returns the kubelet's current view of every active pod's devices,
// uncached (the device plugin reads it while the kubelet admits a pod). It
// does not touch the map Lookup answers from.
// Calls run concurrently: only getting the connection is serialized.
func (c *PodResourcesClient) List(ctx context.Context) ([]*podresourcesv1.PodResources, error) {
	c.mu.Lock()
	client, err := c.clientLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	resp, err := c.list(ctx, client)
	if err != nil {
		return nil, err
	}
	return resp.GetPodResources(), nil
}

// ErrPodNotListed is Get's error for a pod the kubelet does not have.
var ErrPodNotListed = errors.New("the kubelet has no such pod")

// Get returns the kubelet's view of one pod's devices, uncached: one small
// answer where List sends every pod's. The kubelet also answers for a pod
// it has but rejected (Get, unlike List, does not keep to active pods). An
// unknown pod gives an error wrapping ErrPodNotListed.
func (c *PodResourcesClient) Get(ctx context.Context, namespace, name string) (*podresourcesv1.PodResources, error) {
	c.mu.Lock()
	client, err := c.clientLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	req := &podresourcesv1.GetPodResourcesRequest{PodNamespace: namespace, PodName: name}
	resp, err := client.Get(ctx, req, grpc.WaitForReady(true))
	if status.Code(err) == codes.Unavailable && ctx.Err() == nil {
		// A connection the kubelet had just closed (see list).
		resp, err = client.Get(ctx, req, grpc.WaitForReady(true))
	}
	if err != nil {
		// The kubelet answers an unknown pod with a plain error (code
		// Unknown) saying "pod ... not found".
		if status.Code(err) == codes.Unknown && strings.Contains(status.Convert(err).Message(), "not found") {
			return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, ErrPodNotListed)
		}
		return nil, fmt.Errorf("getting pod %s/%s's resources from the kubelet at %s: %w", namespace, name, c.socket, err)
	}
	return resp.GetPodResources(), nil
}

func (c *PodResourcesClient) listLocked(ctx context.Context) (*podresourcesv1.ListPodResourcesResponse, error) {
	client, err := c.clientLocked()
	if err != nil {
		return nil, err
	}
	return c.list(ctx, client)
}

func (c *PodResourcesClient) clientLocked() (podresourcesv1.PodResourcesListerClient, error) {
	if c.closed {
		return nil, fmt.Errorf("pod-resources client for %s is closed", c.socket)
	}
	return c.connectLocked()
}

// list calls List on the kubelet once, or twice after a connection the
// kubelet had just closed.
func (c *PodResourcesClient) list(ctx context.Context, client podresourcesv1.PodResourcesListerClient) (*podresourcesv1.ListPodResourcesResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	// WaitForReady: a connection in reconnect backoff waits for the kubelet
	// up to the call timeout instead of failing at once.
	resp, err := client.List(ctx, &podresourcesv1.ListPodResourcesRequest{}, grpc.WaitForReady(true))
	if status.Code(err) == codes.Unavailable && ctx.Err() == nil {
		// The call went out on a connection the kubelet had just closed
		// (a kubelet restart); gRPC reconnects, so try once more within
		// the same deadline.
		resp, err = client.List(ctx, &podresourcesv1.ListPodResourcesRequest{}, grpc.WaitForReady(true))
	}
	if err != nil {
		return nil, fmt.Errorf("listing pod resources from the kubelet at %s: %w (is the kubelet running, and the socket readable by the agent?)", c.socket, err)
	}
	return resp, nil
}

// connectLocked returns the client of the long-lived connection, creating the
// connection on first use. It checks that the socket exists first, so that a
// missing hostPath mount is reported as such rather than as a gRPC timeout.
func (c *PodResourcesClient) connectLocked() (podresourcesv1.PodResourcesListerClient, error) {
	if _, err := os.Stat(c.socket); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("kubelet pod-resources socket %s not found (is the hostPath %s mounted into the agent, and the kubelet running?): %w", c.socket, filepath.Dir(c.socket), err)
		}
		return nil, fmt.Errorf("checking kubelet pod-resources socket %s: %w", c.socket, err)
	}
	if c.conn != nil {
		if c.lastFailed {
			// The connection may be waiting out a reconnect backoff of up
			// to two minutes; the socket is back, so try now.
			c.conn.ResetConnectBackoff()
		}
		return c.client, nil
	}
	target, err := socketTarget(c.socket)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(podResourcesMaxMsgSize)),
	)
	if err != nil {
		return nil, fmt.Errorf("creating gRPC client for kubelet pod-resources socket %s: %w", c.socket, err)
	}
	c.conn = conn
	c.client = podresourcesv1.NewPodResourcesListerClient(conn)
	return c.client, nil
}

// socketTarget returns the gRPC target for a unix socket path; gRPC wants an
// absolute path after "unix://".
func socketTarget(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolving kubelet pod-resources socket path %s: %w", path, err)
	}
	return "unix://" + abs, nil
}

// deviceMap maps each device ID of the tracked resources to its container. A
// device ID reported for two different pods cannot be attributed to either,
// so it is left out.
func deviceMap(logger klog.Logger, pods []*podresourcesv1.PodResources, resources map[string]bool) map[string]PodRef {
	devices := make(map[string]PodRef)
	ambiguous := make(map[string]bool)
	for _, pod := range pods {
		for _, ctr := range pod.GetContainers() {
			for _, dev := range ctr.GetDevices() {
				if !resources[dev.GetResourceName()] {
					continue
				}
				ref := PodRef{Namespace: pod.GetNamespace(), Name: pod.GetName(), Container: ctr.GetName()}
				for _, id := range dev.GetDeviceIds() {
					prev, seen := devices[id]
					switch {
					case ambiguous[id]:
					case !seen:
						devices[id] = ref
					case prev.Namespace == ref.Namespace && prev.Name == ref.Name:
						// Two containers of one pod: the pod is certain, the container is not.
						prev.Container = ""
						devices[id] = prev
					default:
						logger.V(2).Info("Device allocated to more than one pod, not attributing it", "device", id,
							"pod", klog.KRef(prev.Namespace, prev.Name), "otherPod", klog.KRef(ref.Namespace, ref.Name))
						ambiguous[id] = true
						delete(devices, id)
					}
				}
			}
		}
	}
	return devices
}

// Lookup returns the pod the device with the given ID (a GPU UUID for
// nvidia.com/gpu) is allocated to. It answers false if the device is not
// allocated, or if no Refresh has succeeded within the maximum staleness.
func (c *PodResourcesClient) Lookup(deviceID string) (PodRef, bool) {
	s := c.snap.Load()
	if s == nil || c.now().Sub(s.at) > c.maxStaleness {
		return PodRef{}, false
	}
	ref, ok := s.devices[deviceID]
	return ref, ok
}

// Stats returns the number of Refresh calls, how many of them failed, and
// the time of the last successful one (zero if none).
func (c *PodResourcesClient) Stats() (refreshes, failures uint64, lastSuccess time.Time) {
	if s := c.snap.Load(); s != nil {
		lastSuccess = s.at
	}
	return c.refreshes.Load(), c.failures.Load(), lastSuccess
}

// Close closes the connection to the kubelet. Refresh fails after Close.
func (c *PodResourcesClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.client = nil, nil
	if err != nil {
		return fmt.Errorf("closing connection to kubelet pod-resources socket %s: %w", c.socket, err)
	}
	return nil
}
