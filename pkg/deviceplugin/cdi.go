package deviceplugin

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	cdispec "tags.cncf.io/container-device-interface/specs-go"
)

// SimCDIKind is the CDI kind of simulated GPUs (gpu-agent --nvml=mock).
const SimCDIKind = "sim.gpufleet.io/gpu"

// EnvSimCDIPrefix starts the variable each simulated GPU's CDI device sets
// in a container: GPUFLEET_SIM_CDI_GPU<index>=<UUID>. A container holds
// exactly the variables of the CDI devices the runtime injected, so tests
// on a node without GPUs see what the runtime did.
const EnvSimCDIPrefix = "GPUFLEET_SIM_CDI_GPU"

// WriteSimCDISpec writes a CDI spec for simulated GPUs into dir (the
// runtime's CDI directory, e.g. /var/run/cdi): one device per GPU, named by
// its UUID, that sets EnvSimCDIPrefix<index>=<UUID>. It returns the file's
// path; the file is replaced atomically.
func WriteSimCDISpec(dir string, gpus []GPU) (string, error) {
	spec := &cdispec.Spec{Kind: SimCDIKind}
	for _, g := range gpus {
		spec.Devices = append(spec.Devices, cdispec.Device{
			Name:           g.UUID,
			ContainerEdits: cdispec.ContainerEdits{Env: []string{EnvSimCDIPrefix + strconv.Itoa(g.Index) + "=" + g.UUID}},
		})
	}
	version, err := cdispec.MinimumRequiredVersion(spec)
	if err != nil {
		return "", fmt.Errorf("CDI spec version: %w", err)
	}
	spec.Version = version
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating the CDI directory: %w", err)
	}
	path := filepath.Join(dir, strings.ReplaceAll(SimCDIKind, "/", "-")+".json")
	tmp, err := os.CreateTemp(dir, ".gpufleet-cdi-*")
	if err != nil {
		return "", fmt.Errorf("writing the CDI spec: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("writing the CDI spec: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("writing the CDI spec: %w", err)
	}
	return path, nil
}
