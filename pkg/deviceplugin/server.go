package deviceplugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// resourceServer serves the device plugin API for one resource.
type resourceServer struct {
	pluginapi.UnimplementedDevicePluginServer
	p        *Plugin
	resource string
	// stop ends ListAndWatch streams when the server is replaced.
	stop <-chan struct{}
}

func (s *resourceServer) observe(method string, start time.Time) {
	s.p.metrics.calls.WithLabelValues(method, s.resource).Observe(time.Since(start).Seconds())
}

// GetDevicePluginOptions asks the kubelet for GetPreferredAllocation (the
// steering) and PreStartContainer (the check).
func (s *resourceServer) GetDevicePluginOptions(context.Context, *pluginapi.Empty) (*pluginapi.DevicePluginOptions, error) {
	return &pluginapi.DevicePluginOptions{PreStartRequired: true, GetPreferredAllocationAvailable: true}, nil
}

// ListAndWatch sends the device list now and again on every health change.
func (s *resourceServer) ListAndWatch(_ *pluginapi.Empty, stream grpc.ServerStreamingServer[pluginapi.ListAndWatchResponse]) error {
	for {
		healthy, changed := s.p.health.snapshot()
		if err := stream.Send(&pluginapi.ListAndWatchResponse{Devices: s.p.devices(s.resource, healthy)}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-s.stop:
			return nil
		case <-stream.Context().Done():
			return nil
		}
	}
}

// GetPreferredAllocation steers the kubelet to the GPUs of the pod being
// admitted.
func (s *resourceServer) GetPreferredAllocation(ctx context.Context, req *pluginapi.PreferredAllocationRequest) (*pluginapi.PreferredAllocationResponse, error) {
	defer s.observe("GetPreferredAllocation", time.Now())
	logger := klog.FromContext(ctx)
	p := s.p
	v, err := p.nodeView(ctx)
	if err != nil {
		if p.cfg.OnMismatch == OnMismatchRefuse {
			return nil, status.Errorf(codes.Unavailable, "cannot find the pod being admitted, so cannot steer it to its annotated GPUs: %v", err)
		}
		logger.Error(err, "Choosing devices without knowing the pod")
		v = p.inv.view(nil)
	}
	resp := &pluginapi.PreferredAllocationResponse{}
	for _, cr := range req.GetContainerRequests() {
		a := p.admitting(ctx, s.resource, v)
		switch {
		case a == nil:
			p.metrics.unidentified.WithLabelValues(s.resource).Inc()
		case a.ambiguous > 0:
			p.metrics.ambiguous.WithLabelValues(s.resource).Inc()
		}
		ids, err := p.inv.preferred(s.resource, a, v, cr.GetAvailableDeviceIDs(), cr.GetMustIncludeDeviceIDs(), int(cr.GetAllocationSize()))
		var steer *steerError
		if errors.As(err, &steer) {
			p.metrics.steerFailures.WithLabelValues(s.resource).Inc()
			if a != nil {
				p.warn(ctx, a.pod, ReasonGPUSteering, steer.msg)
			}
			if p.cfg.OnMismatch == OnMismatchRefuse {
				return nil, status.Error(codes.FailedPrecondition, steer.msg)
			}
			logger.Info("Annotated GPUs unavailable; choosing other devices", "reason", steer.msg)
			ids, err = p.inv.preferred(s.resource, nil, v, cr.GetAvailableDeviceIDs(), cr.GetMustIncludeDeviceIDs(), int(cr.GetAllocationSize()))
		}
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		p.remember(a, s.resource, ids)
		p.keepSteerView(s.resource, ids, v)
		if a != nil {
			logger.V(2).Info("Steered allocation", "pod", klog.KObj(a.pod), "resource", s.resource, "size", cr.GetAllocationSize(), "gpus", gpuIndicesOf(p.inv, s.resource, ids))
		}
		resp.ContainerResponses = append(resp.ContainerResponses, &pluginapi.ContainerPreferredAllocationResponse{DeviceIDs: ids})
	}
	return resp, nil
}

// Allocate maps the kubelet's device IDs to GPUs.
func (s *resourceServer) Allocate(ctx context.Context, req *pluginapi.AllocateRequest) (*pluginapi.AllocateResponse, error) {
	defer s.observe("Allocate", time.Now())
	resp := &pluginapi.AllocateResponse{}
	for _, cr := range req.GetContainerRequests() {
		v, err := s.p.allocateView(ctx, s.resource, cr.GetDevicesIds())
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "cannot check that no GPU is given out both whole and in shares: %v", err)
		}
		c, err := s.p.allocate(s.resource, cr.GetDevicesIds(), v)
		if err != nil {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
		resp.ContainerResponses = append(resp.ContainerResponses, c)
	}
	return resp, nil
}

// PreStartContainer checks the container's devices against its pod's
// annotation.
func (s *resourceServer) PreStartContainer(ctx context.Context, req *pluginapi.PreStartContainerRequest) (*pluginapi.PreStartContainerResponse, error) {
	defer s.observe("PreStartContainer", time.Now())
	err := s.p.verify(ctx, s.resource, req.GetDevicesIds())
	var m *mismatch
	switch {
	case errors.As(err, &m):
		s.p.metrics.mismatches.WithLabelValues(s.resource).Inc()
		s.p.warn(ctx, m.pod, ReasonGPUMismatch, m.msg)
		klog.FromContext(ctx).Info("GPU mismatch", "pod", klog.KObj(m.pod), "container", m.container, "reason", m.msg, "policy", s.p.cfg.OnMismatch)
		if s.p.cfg.OnMismatch == OnMismatchRefuse {
			return nil, status.Error(codes.FailedPrecondition, m.msg)
		}
	case err != nil:
		// The kubelet's pod-resources API did not answer: the container's
		// devices cannot be checked.
		if s.p.cfg.OnMismatch == OnMismatchRefuse {
			return nil, status.Errorf(codes.Unavailable, "cannot check the container's GPUs: %v", err)
		}
		klog.FromContext(ctx).Error(err, "Starting a container whose GPUs could not be checked")
	}
	return &pluginapi.PreStartContainerResponse{}, nil
}

func gpuIndicesOf(inv *inventory, resource string, ids []string) string {
	gpus, _, err := inv.gpusOf(resource, ids)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return indexList(gpus)
}
