package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The committed reference model is what the script makes: training is
// deterministic, and nobody edited the weights by hand.
func TestIntegrationCommittedModelIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for a few seconds")
	}
	dir := t.TempDir()
	if err := run(dir, "property-value", "1", 32, 2, 150, 10000, 42, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"1/model.safetensors", "1/README.md"} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "models", "property-value", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from a fresh training run: regenerate it with the command in its README", f)
		}
	}
}
