package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// watchEvery is how often the plugin checks that the kubelet it registered
// with still runs (its socket keeps its inode) and that its own sockets
// still exist (a starting kubelet deletes them).
const watchEvery = 200 * time.Millisecond

// registerTimeout bounds one registration call.
const registerTimeout = 10 * time.Second

// Run serves the plugin until ctx ends: it waits for the kubelet, serves one
// socket per resource, registers them, and starts over whenever the kubelet
// restarts. Allocations survive that: the kubelet keeps them in its
// checkpoint, and the plugin keeps no state a restart would lose (it reads
// allocations from the pod-resources API on every call).
func (p *Plugin) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	go p.health.run(ctx, p.cfg.HealthInterval)
	defer p.removeSockets()
	for {
		err := p.serveOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		logger.Info("Device plugin starts over", "reason", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchEvery):
		}
	}
}

// serveOnce serves and registers every resource with the kubelet running
// now, and returns when that kubelet is gone, a socket was removed, or ctx
// ends.
func (p *Plugin) serveOnce(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	kubelet, err := p.waitForKubelet(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var servers []*grpc.Server
	defer func() {
		for _, s := range servers {
			s.Stop()
		}
	}()
	for _, res := range p.resources() {
		srv, err := p.serve(ctx, res)
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	for _, res := range p.resources() {
		if err := p.register(ctx, res); err != nil {
			return err
		}
		p.metrics.registrations.WithLabelValues(res).Inc()
		logger.Info("Registered with the kubelet", "resource", res, "socket", p.socketPath(res), "gpus", len(p.inv.gpus))
	}
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if id, err := fileID(p.kubeletSocket()); err != nil || id != kubelet {
			return errors.New("the kubelet restarted (its registration socket changed)")
		}
		for _, res := range p.resources() {
			if _, err := os.Stat(p.socketPath(res)); err != nil {
				return fmt.Errorf("the plugin's socket for %s is gone (a kubelet start removes it)", res)
			}
		}
	}
}

// waitForKubelet waits until the kubelet's registration socket exists and
// returns its identity.
func (p *Plugin) waitForKubelet(ctx context.Context) (uint64, error) {
	logged := false
	for {
		id, err := fileID(p.kubeletSocket())
		if err == nil {
			return id, nil
		}
		if !logged {
			klog.FromContext(ctx).Info("Waiting for the kubelet's device-plugin socket", "socket", p.kubeletSocket(), "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(watchEvery):
		}
	}
}

// serve listens on resource's socket and serves the device plugin API on it
// until ctx ends or the returned server stops.
func (p *Plugin) serve(ctx context.Context, resource string) (*grpc.Server, error) {
	path := p.socketPath(resource)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the old socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (is the kubelet's %s mounted into the agent?): %w", path, p.cfg.Dir, err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterDevicePluginServer(srv, &resourceServer{p: p, resource: resource, stop: ctx.Done()})
	go func() {
		if err := srv.Serve(l); err != nil {
			klog.FromContext(ctx).Error(err, "Device plugin server stopped", "resource", resource)
		}
	}()
	return srv, nil
}

// register tells the kubelet about resource's socket.
func (p *Plugin) register(ctx context.Context, resource string) error {
	conn, err := grpc.NewClient("unix://"+p.kubeletSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to the kubelet at %s: %w", p.kubeletSocket(), err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	_, err = pluginapi.NewRegistrationClient(conn).Register(ctx, &pluginapi.RegisterRequest{
		Version:      pluginapi.Version,
		Endpoint:     p.socketPathBase(resource),
		ResourceName: resource,
		Options:      &pluginapi.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true},
	}, grpc.WaitForReady(true))
	if err != nil {
		return fmt.Errorf("registering %s with the kubelet at %s: %w", resource, p.kubeletSocket(), err)
	}
	return nil
}

// socketPathBase is the socket's name in the kubelet's directory: what
// the kubelet expects as the endpoint.
func (p *Plugin) socketPathBase(resource string) string {
	return filepath.Base(p.socketPath(resource))
}

func (p *Plugin) removeSockets() {
	for _, res := range p.resources() {
		_ = os.Remove(p.socketPath(res))
	}
}

// fileID identifies a file by device and inode: a restarted kubelet
// recreates its socket.
func fileID(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("no inode for %s", path)
	}
	return uint64(st.Dev)<<32 ^ st.Ino, nil
}
