package model

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// File names in a model directory.
const (
	ConfigFile  = "config.yaml"
	WeightsFile = "model.safetensors"
	// maxWeights bounds one weights file.
	maxWeights = 4 << 30
)

// Model is one model of the repository with all its versions.
type Model struct {
	Config
	// Versions are sorted by number, lowest first.
	Versions []*Version
	// Default serves requests that name no version (but for the canary share).
	Default *Version
	// CanaryVersion, if set, gets Config.Canary.Percent of those requests.
	CanaryVersion *Version
}

// Version is one version's weights, ready for a backend.
type Version struct {
	Model   string
	Version string
	Layers  []backend.Layer
	In, Out int
	// Reference are the training distributions (reference.json), or nil.
	Reference *Reference
}

// Lookup returns the version named v.
func (m *Model) Lookup(v string) (*Version, bool) {
	for _, ver := range m.Versions {
		if ver.Version == v {
			return ver, true
		}
	}
	return nil, false
}

// Route picks the version for a request that names none; u is uniform in
// [0, 1).
func (m *Model) Route(u float64) *Version {
	if m.CanaryVersion != nil && u*100 < float64(m.Canary.Percent) {
		return m.CanaryVersion
	}
	return m.Default
}

// RouteRandom is Route with a random draw.
func (m *Model) RouteRandom() *Version { return m.Route(rand.Float64()) }

// Defaults apply to models whose config leaves a field unset.
type Defaults struct {
	MaxBatchSize  int
	MaxQueueDelay time.Duration
	MaxQueueSize  int
	// Version is the default version when a config names none and the
	// version exists (the MODEL_VERSION convention); else the highest.
	Version string
}

// Load reads every model directory under dir. Every problem of every model
// is reported, each naming its file; nothing loads if anything is wrong.
func Load(dir string, d Defaults) (map[string]*Model, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading model repository: %w", err)
	}
	models := map[string]*Model{}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m, err := loadModel(filepath.Join(dir, e.Name()), d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		models[m.Name] = m
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(models) == 0 {
		return nil, fmt.Errorf("model repository %s holds no model (want <name>/%s and <name>/<version>/%s)", dir, ConfigFile, WeightsFile)
	}
	return models, nil
}

func loadModel(dir string, d Defaults) (*Model, error) {
	cfgPath := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if cfg.Name != filepath.Base(dir) {
		return nil, fmt.Errorf("%s: name %q differs from its directory %q", cfgPath, cfg.Name, filepath.Base(dir))
	}
	applyDefaults(cfg, d)
	m := &Model{Config: *cfg}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !isVersion(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name(), WeightsFile)
		v, err := loadVersion(cfg, e.Name(), path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		if v.Reference, err = loadReference(filepath.Join(dir, e.Name()), v.In, v.Out); err != nil {
			errs = append(errs, err)
			continue
		}
		m.Versions = append(m.Versions, v)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(m.Versions) == 0 {
		return nil, fmt.Errorf("%s: no version directory with %s", dir, WeightsFile)
	}
	sort.Slice(m.Versions, func(i, j int) bool {
		return versionNumber(m.Versions[i].Version) < versionNumber(m.Versions[j].Version)
	})
	m.Default = m.Versions[len(m.Versions)-1]
	if want := cfg.DefaultVersion; want != "" {
		v, ok := m.Lookup(want)
		if !ok {
			return nil, fmt.Errorf("%s: defaultVersion %q has no directory", cfgPath, want)
		}
		m.Default = v
	} else if v, ok := m.Lookup(d.Version); ok {
		m.Default = v
	}
	if cfg.Canary != nil {
		v, ok := m.Lookup(cfg.Canary.Version)
		if !ok {
			return nil, fmt.Errorf("%s: canary version %q has no directory", cfgPath, cfg.Canary.Version)
		}
		m.CanaryVersion = v
	}
	return m, nil
}

func applyDefaults(c *Config, d Defaults) {
	if c.MaxBatchSize == 0 {
		c.MaxBatchSize = max(1, d.MaxBatchSize)
	}
	if c.MaxQueueDelay == nil {
		c.MaxQueueDelay = durationPtr(d.MaxQueueDelay)
	}
	if c.MaxQueueSize == 0 {
		c.MaxQueueSize = max(d.MaxQueueSize, c.MaxBatchSize)
	}
}

func loadVersion(cfg *Config, version, path string) (*Version, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxWeights {
		return nil, fmt.Errorf("%d bytes is over the %d-byte limit", st.Size(), int64(maxWeights))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tensors, err := ParseSafetensors(data)
	if err != nil {
		return nil, err
	}
	layers, err := BuildLayers(cfg, tensors)
	if err != nil {
		return nil, err
	}
	return &Version{Model: cfg.Name, Version: version, Layers: layers, In: layers[0].In, Out: layers[len(layers)-1].Out}, nil
}

// BuildLayers assembles the config's layers from tensors and checks them
// against the config's input and output widths.
func BuildLayers(cfg *Config, tensors map[string]Tensor) ([]backend.Layer, error) {
	var errs []error
	layers := make([]backend.Layer, 0, len(cfg.Layers))
	for i, spec := range cfg.Layers {
		w, okW := tensors[spec.Weights]
		b, okB := tensors[spec.Bias]
		switch {
		case !okW:
			errs = append(errs, fmt.Errorf("layers[%d]: no tensor %q", i, spec.Weights))
			continue
		case !okB:
			errs = append(errs, fmt.Errorf("layers[%d]: no tensor %q", i, spec.Bias))
			continue
		case len(w.Shape) != 2:
			errs = append(errs, fmt.Errorf("layers[%d]: weights %q have shape %v, want [in, out]", i, spec.Weights, w.Shape))
			continue
		case len(b.Shape) != 1 || b.Shape[0] != w.Shape[1]:
			errs = append(errs, fmt.Errorf("layers[%d]: bias %q has shape %v, want [%d]", i, spec.Bias, b.Shape, w.Shape[1]))
			continue
		}
		layers = append(layers, backend.Layer{In: w.Shape[0], Out: w.Shape[1], W: w.Data, B: b.Data, Activation: spec.Activation})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := backend.CheckStack(layers); err != nil {
		return nil, err
	}
	if in := cfg.Inputs[0].Shape[0]; layers[0].In != in {
		errs = append(errs, fmt.Errorf("input %q has %d values but the first layer takes %d", cfg.Inputs[0].Name, in, layers[0].In))
	}
	if out := cfg.Outputs[0].Shape[0]; layers[len(layers)-1].Out != out {
		errs = append(errs, fmt.Errorf("output %q has %d values but the last layer gives %d", cfg.Outputs[0].Name, out, layers[len(layers)-1].Out))
	}
	return layers, errors.Join(errs...)
}

func versionNumber(v string) uint64 {
	n, _ := strconv.ParseUint(v, 10, 32)
	return n
}
