package main

import (
	"os"
	"path/filepath"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// writeEmptyModel writes an 8 -> 1 model: the server's own cost, nearly
// nothing of the model's.
func writeEmptyModel(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "1"), 0o755); err != nil {
		return err
	}
	data, err := model.EncodeSafetensors(map[string]model.Tensor{
		"w": {Shape: []int{8, 1}, Data: make([]float32, 8)}, "b": {Shape: []int{1}, Data: []float32{0.5}},
	}, nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "1", model.WeightsFile), data, 0o644); err != nil {
		return err
	}
	cfg := "name: empty\nplatform: gpufleet-mlp\ninputs: [{name: features, datatype: FP32, shape: [8]}]\noutputs: [{name: y, datatype: FP32, shape: [1]}]\nlayers: [{weights: w, bias: b, activation: identity}]\n"
	return os.WriteFile(filepath.Join(dir, model.ConfigFile), []byte(cfg), 0o644)
}

func copyModel(from, to string) error { return copyTree(from, to, nil) }

// copyTree copies a directory, passing each file through edit if set.
func copyTree(from, to string, edit func(path string, data []byte) []byte) error {
	return filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if edit != nil {
			data = edit(path, data)
		}
		return os.WriteFile(dst, data, 0o644)
	})
}
