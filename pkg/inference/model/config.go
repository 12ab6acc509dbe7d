// Package model reads a model repository: one directory per model with a
// config.yaml describing its tensors and architecture, and one numbered
// directory per version holding its weights as model.safetensors.
//
//	models/
//	  property-value/
//	    config.yaml
//	    1/model.safetensors
//	    2/model.safetensors
package model

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/gpufleet/gpufleet/pkg/inference/backend"
)

// Config is a model's config.yaml. Unknown fields are an error.
//
//	name: property-value
//	platform: gpufleet-mlp          # optional
//	maxBatchSize: 32                # optional: rows per batch; server default otherwise
//	maxQueueDelay: 2ms              # optional: how long a batch waits to fill
//	maxQueueSize: 1024              # optional: rows that may wait; more get 429
//	defaultVersion: "1"             # optional: default the highest version
//	canary: {version: "2", percent: 10}   # optional: share of unversioned requests
//	inputs:  [{name: features, datatype: FP32, shape: [8]}]
//	outputs: [{name: price, datatype: FP32, shape: [1]}]
//	layers:                         # dense layers, tensors named in model.safetensors
//	- {weights: l0.weight, bias: l0.bias, activation: relu}   # weight shape [in, out]
//	- {weights: l1.weight, bias: l1.bias, activation: identity}
type Config struct {
	Name           string           `json:"name"`
	Platform       string           `json:"platform,omitempty"`
	MaxBatchSize   int              `json:"maxBatchSize,omitempty"`
	MaxQueueDelay  *metav1.Duration `json:"maxQueueDelay,omitempty"`
	MaxQueueSize   int              `json:"maxQueueSize,omitempty"`
	DefaultVersion string           `json:"defaultVersion,omitempty"`
	Canary         *Canary          `json:"canary,omitempty"`
	Inputs         []TensorSpec     `json:"inputs"`
	Outputs        []TensorSpec     `json:"outputs"`
	Layers         []LayerSpec      `json:"layers"`
}

// Canary sends a share of the requests that name no version to Version.
type Canary struct {
	Version string `json:"version"`
	Percent int    `json:"percent"`
}

// TensorSpec describes one input or output per row: the shape excludes the
// batch dimension.
type TensorSpec struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// LayerSpec names a dense layer's tensors.
type LayerSpec struct {
	Weights    string             `json:"weights"`
	Bias       string             `json:"bias"`
	Activation backend.Activation `json:"activation"`
}

// Datatypes of the v2 protocol this server takes as input and gives as output.
var (
	InputDatatypes  = map[string]bool{"FP32": true, "FP16": true, "INT32": true, "INT64": true, "BOOL": true}
	OutputDatatypes = map[string]bool{"FP32": true, "FP16": true}
)

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// ParseConfig decodes and validates a config.yaml.
func ParseConfig(data []byte) (*Config, error) {
	c := &Config{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.Platform == "" {
		c.Platform = "gpufleet-mlp"
	}
	return c, nil
}

func (c *Config) validate() error {
	var errs []error
	if !nameRE.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name: %q must be 1-128 letters, digits, '_', '.' or '-'", c.Name))
	}
	if c.MaxBatchSize < 0 || c.MaxBatchSize > 4096 {
		errs = append(errs, fmt.Errorf("maxBatchSize: %d must be between 1 and 4096 (or unset)", c.MaxBatchSize))
	}
	if c.MaxQueueDelay != nil && (c.MaxQueueDelay.Duration < 0 || c.MaxQueueDelay.Duration.Seconds() > 1) {
		errs = append(errs, fmt.Errorf("maxQueueDelay: %s must be between 0 and 1s", c.MaxQueueDelay.Duration))
	}
	if c.MaxQueueSize < 0 {
		errs = append(errs, fmt.Errorf("maxQueueSize: %d must not be negative", c.MaxQueueSize))
	}
	if c.DefaultVersion != "" && !isVersion(c.DefaultVersion) {
		errs = append(errs, fmt.Errorf("defaultVersion: %q is not a version number", c.DefaultVersion))
	}
	if c.Canary != nil {
		if !isVersion(c.Canary.Version) {
			errs = append(errs, fmt.Errorf("canary.version: %q is not a version number", c.Canary.Version))
		}
		if c.Canary.Percent < 0 || c.Canary.Percent > 100 {
			errs = append(errs, fmt.Errorf("canary.percent: %d must be between 0 and 100", c.Canary.Percent))
		}
	}
	errs = append(errs, checkSpecs("inputs", c.Inputs, InputDatatypes)...)
	errs = append(errs, checkSpecs("outputs", c.Outputs, OutputDatatypes)...)
	if len(c.Layers) == 0 {
		errs = append(errs, errors.New("layers: a model needs at least one layer"))
	}
	for i, l := range c.Layers {
		if l.Weights == "" || l.Bias == "" {
			errs = append(errs, fmt.Errorf("layers[%d]: weights and bias must name tensors", i))
		}
		if err := (backend.Layer{In: 1, Out: 1, W: []float32{0}, B: []float32{0}, Activation: l.Activation}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("layers[%d].activation: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// checkSpecs wants exactly one tensor of a vector shape: an MLP reads one
// feature vector per row and writes one.
func checkSpecs(field string, specs []TensorSpec, types map[string]bool) []error {
	if len(specs) != 1 {
		return []error{fmt.Errorf("%s: an MLP has exactly one, got %d", field, len(specs))}
	}
	var errs []error
	s := specs[0]
	if !nameRE.MatchString(s.Name) {
		errs = append(errs, fmt.Errorf("%s[0].name: %q is not a valid tensor name", field, s.Name))
	}
	if !types[s.Datatype] {
		errs = append(errs, fmt.Errorf("%s[0].datatype: %q not supported here", field, s.Datatype))
	}
	if len(s.Shape) != 1 || s.Shape[0] <= 0 || s.Shape[0] > 1<<20 {
		errs = append(errs, fmt.Errorf("%s[0].shape: %v must be one positive dimension (the batch dimension is implied)", field, s.Shape))
	}
	return errs
}

func isVersion(s string) bool {
	n, err := strconv.ParseUint(s, 10, 32)
	return err == nil && n > 0 && strconv.FormatUint(n, 10) == s
}

func durationPtr(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
