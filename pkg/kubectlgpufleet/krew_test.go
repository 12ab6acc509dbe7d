package kubectlgpufleet

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"sigs.k8s.io/yaml"
)

// The krew manifest template becomes a valid Plugin once krew-release-bot
// fills in each archive: every platform installs bin/kubectl-gpufleet.
func TestKrewManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", ".krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// What the bot does: each addURIAndSha becomes a uri and a sha256.
	filled := regexp.MustCompile(`\{\{addURIAndSha "([^"]+)" \.TagName \}\}`).ReplaceAll(data, []byte("uri: $1\n    sha256: 0000"))
	filled = regexp.MustCompile(`\{\{ \.TagName \}\}`).ReplaceAll(filled, []byte("v0.1.0"))
	var p struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name string }
		Spec       struct {
			Version          string
			ShortDescription string `json:"shortDescription"`
			Platforms        []struct {
				URI    string `json:"uri"`
				Sha256 string `json:"sha256"`
				Bin    string `json:"bin"`
			}
		}
	}
	if err := yaml.Unmarshal(filled, &p); err != nil {
		t.Fatalf("the filled manifest is not YAML: %v\n%s", err, filled)
	}
	if p.Kind != "Plugin" || p.Metadata.Name != "gpufleet" || p.Spec.Version != "v0.1.0" || len(p.Spec.Platforms) == 0 {
		t.Fatalf("manifest %+v", p)
	}
	for _, pl := range p.Spec.Platforms {
		if pl.Bin != "kubectl-gpufleet" || pl.URI == "" || pl.Sha256 == "" {
			t.Errorf("platform %+v", pl)
		}
	}
}
