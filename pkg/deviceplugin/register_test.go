package deviceplugin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// wantOptions are the options the plugin needs from the kubelet: the
// preferred-allocation call (steering) and the pre-start call (the check).
var wantOptions = registration{PreStartRequired: true, GetPreferredAllocationAvailable: true}

// registration is the part of a RegisterRequest the kubelet acts on.
type registration struct {
	Version, ResourceName                             string
	PreStartRequired, GetPreferredAllocationAvailable bool
}

func registrationOf(r *pluginapi.RegisterRequest) registration {
	return registration{
		Version: r.GetVersion(), ResourceName: r.GetResourceName(),
		PreStartRequired:                r.GetOptions().GetPreStartRequired(),
		GetPreferredAllocationAvailable: r.GetOptions().GetGetPreferredAllocationAvailable(),
	}
}

func TestPluginRegistersEachResourceWithTheKubelet(t *testing.T) {
	h := start(t)

	var got []registration
	for _, r := range h.kubelet.registrations() {
		got = append(got, registrationOf(r))
		// The kubelet dials its directory joined with the endpoint.
		sock := filepath.Join(h.dir, r.GetEndpoint())
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("%s registered endpoint %q: %s is not a socket (%v)", r.GetResourceName(), r.GetEndpoint(), sock, err)
		}
	}
	slices.SortFunc(got, func(a, b registration) int { return strings.Compare(a.ResourceName, b.ResourceName) })
	want := []registration{
		{Version: pluginapi.Version, ResourceName: ResourceMilli, PreStartRequired: true, GetPreferredAllocationAvailable: true},
		{Version: "v1beta1", ResourceName: ResourceWhole, PreStartRequired: true, GetPreferredAllocationAvailable: true},
	}
	slices.SortFunc(want, func(a, b registration) int { return strings.Compare(a.ResourceName, b.ResourceName) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RegisterRequests (-want +got):\n%s", diff)
	}
	for _, res := range []string{ResourceMilli, ResourceWhole} {
		o := h.kubelet.options(res)
		gotOpts := registration{PreStartRequired: o.GetPreStartRequired(), GetPreferredAllocationAvailable: o.GetGetPreferredAllocationAvailable()}
		if gotOpts != wantOptions {
			t.Errorf("GetDevicePluginOptions for %s = %+v, want %+v", res, gotOpts, wantOptions)
		}
	}
	if got := metric(t, h.plugin, "gpufleet_deviceplugin_registrations_total", "resource", ResourceMilli); got != 1 {
		t.Errorf("registrations_total{resource=%q} = %v, want 1", ResourceMilli, got)
	}
}

func TestListAndWatchAdvertisesEveryGPU(t *testing.T) {
	h := start(t)

	milli, _ := h.kubelet.devices(ResourceMilli)
	want := map[string]bool{}
	for g := range 8 {
		for _, id := range milliIDs(g, 0, MilliPerGPU) {
			want[id] = true
		}
	}
	checkList(t, ResourceMilli, milli, want)

	whole, _ := h.kubelet.devices(ResourceWhole)
	want = map[string]bool{}
	for _, id := range wholeIDs(0, 1, 2, 3, 4, 5, 6, 7) {
		want[id] = true
	}
	checkList(t, ResourceWhole, whole, want)

	for res, n := range map[string]float64{ResourceMilli: 8000, ResourceWhole: 8} {
		if got := metric(t, h.plugin, "gpufleet_deviceplugin_devices", "resource", res, "health", pluginapi.Healthy); got != n {
			t.Errorf("devices{resource=%q,health=Healthy} = %v, want %v", res, got, n)
		}
	}
}

// checkList checks that a device list holds exactly the IDs of want, once
// each, all healthy, none longer than 63 characters.
func checkList(t *testing.T, resource string, devs []*pluginapi.Device, want map[string]bool) {
	t.Helper()
	if len(devs) != len(want) {
		t.Errorf("%s: %d devices listed, want %d", resource, len(devs), len(want))
	}
	seen := map[string]bool{}
	for _, d := range devs {
		id := d.GetID()
		switch {
		case !want[id]:
			t.Errorf("%s: unexpected device ID %q", resource, id)
		case seen[id]:
			t.Errorf("%s: device ID %q listed twice", resource, id)
		}
		seen[id] = true
		if d.GetHealth() != pluginapi.Healthy {
			t.Errorf("%s: device %q is %s", resource, id, d.GetHealth())
		}
		if len(id) > 63 {
			t.Errorf("%s: device ID %q has %d characters, more than 63", resource, id, len(id))
		}
	}
}

func TestPluginRegistersOnlyTheResourcesItAdvertises(t *testing.T) {
	for _, tc := range []struct {
		name         string
		milli, whole bool
	}{
		{name: "milli only", milli: true},
		{name: "whole only", whole: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, func(c *Config) { c.Milli, c.Whole = tc.milli, tc.whole })
			var got []string
			for _, r := range h.kubelet.registrations() {
				got = append(got, r.GetResourceName())
			}
			if want := advertised(h.cfg); !slices.Equal(got, want) {
				t.Errorf("registered %v, want %v", got, want)
			}
			socks, err := filepath.Glob(filepath.Join(h.dir, "gpufleet-*.sock"))
			if err != nil {
				t.Fatal(err)
			}
			if len(socks) != 1 {
				t.Errorf("plugin sockets %v, want one", socks)
			}
		})
	}
}

func TestRegistrationEndpointWhenDirIsNotClean(t *testing.T) {
	// The default, pluginapi.DevicePluginPath, ends in a slash.
	for _, tc := range []struct{ name, suffix string }{
		{name: "trailing slash", suffix: "/"},
		{name: "double slash", suffix: "//"},
		{name: "dot", suffix: "/."},
	} {
		suffix := tc.suffix
		t.Run(tc.name, func(t *testing.T) {
			dir := socketDir(t)
			k := startFakeKubelet(t, dir)
			cfg := Config{
				NodeName: testNode, GPUs: dgx1(), Milli: true, Dir: dir + suffix,
				PodResources: &fakePodResources{}, Pods: &fakePods{},
			}
			runPlugin(t, cfg)
			eventually(t, "a registration", func() bool { return len(k.registrations()) > 0 })
			r := k.registrations()[0]
			if sock := filepath.Join(dir, r.GetEndpoint()); !isSocket(sock) {
				t.Errorf("Dir %q: registered endpoint %q, which names no socket in the directory", cfg.Dir, r.GetEndpoint())
			}
		})
	}
}

func isSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}
