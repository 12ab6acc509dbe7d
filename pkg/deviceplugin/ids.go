package deviceplugin

import (
	"fmt"
	"strconv"
	"strings"
)

// MilliPerGPU is the number of gpufleet.io/gpu-milli device IDs per GPU.
const MilliPerGPU = 1000

// maxDeviceID is the longest device ID the plugin hands out: IDs appear in
// the kubelet's checkpoint and in the pod-resources API, where tools expect
// names that fit a label value.
const maxDeviceID = 63

// milliSep separates a GPU's UUID from the number of one of its milli
// device IDs: "GPU-6f8a...-m042".
const milliSep = "-m"

// wholeID is the nvidia.com/gpu device ID of a GPU: its UUID, as NVIDIA's
// own device plugin names it, so tools that map IDs to GPUs keep working.
func wholeID(uuid string) string { return uuid }

// milliID is the k-th (0..999) gpufleet.io/gpu-milli device ID of a GPU.
func milliID(uuid string, k int) string {
	return fmt.Sprintf("%s%s%03d", uuid, milliSep, k)
}

// parseMilliID returns the UUID of the GPU a gpufleet.io/gpu-milli device
// ID belongs to, and its number.
func parseMilliID(id string) (uuid string, k int, err error) {
	i := strings.LastIndex(id, milliSep)
	if i <= 0 || len(id)-i-len(milliSep) != 3 {
		return "", 0, fmt.Errorf("device ID %q is not a gpufleet.io/gpu-milli ID (<GPU UUID>%s<000..999>)", id, milliSep)
	}
	digits := id[i+len(milliSep):]
	if strings.Trim(digits, "0123456789") != "" {
		return "", 0, fmt.Errorf("device ID %q is not a gpufleet.io/gpu-milli ID (<GPU UUID>%s<000..999>)", id, milliSep)
	}
	k, err = strconv.Atoi(digits)
	if err != nil || k < 0 || k >= MilliPerGPU {
		return "", 0, fmt.Errorf("device ID %q is not a gpufleet.io/gpu-milli ID (<GPU UUID>%s<000..999>)", id, milliSep)
	}
	return id[:i], k, nil
}

// checkUUID says whether a GPU's UUID makes valid device IDs.
func checkUUID(uuid string) error {
	switch {
	case uuid == "":
		return fmt.Errorf("GPU has no UUID")
	case len(milliID(uuid, 0)) > maxDeviceID:
		return fmt.Errorf("GPU UUID %q is too long for device IDs of at most %d characters", uuid, maxDeviceID)
	case strings.ContainsAny(uuid, " ,/\t\n"):
		return fmt.Errorf("GPU UUID %q has a space, comma or slash", uuid)
	}
	return nil
}
