package kubectlgpufleet

import (
	"bytes"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestNodesGolden(t *testing.T) {
	inv := BuildInventory(fixtureNodes(t), fixturePods())
	u := 0.42
	inv[1].Utilization = &u // v100-a
	for format, file := range map[string]string{OutputTable: "nodes.golden", OutputWide: "nodes-wide.golden", OutputJSON: "nodes.json.golden", OutputYAML: "nodes.yaml.golden"} {
		var b bytes.Buffer
		if err := PrintNodes(&b, inv, format); err != nil {
			t.Fatal(err)
		}
		golden(t, file, b.String())
	}
	if err := PrintNodes(&bytes.Buffer{}, inv, "xml"); err == nil || !strings.Contains(err.Error(), "wide, json or yaml") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestInventory(t *testing.T) {
	inv := BuildInventory(fixtureNodes(t), fixturePods())
	var nodes []string
	for _, n := range inv {
		nodes = append(nodes, n.Name)
	}
	if strings.Join(nodes, ",") != "t4-a,v100-a,v100-b" {
		t.Fatalf("GPU nodes %v (the CPU node is no GPU node)", nodes)
	}
	a := inv[1]
	if g := a.GPUs[0]; g.Allocated != 800 || g.Free != 200 || len(g.Pods) != 2 {
		t.Errorf("v100-a GPU 0: %+v", g)
	}
	if g := a.GPUs[2]; g.Allocated != 0 {
		t.Errorf("a finished pod still holds GPU 2: %+v", g)
	}
	if len(a.Unplaced) != 1 || a.Unplaced[0].Pod != "stale" || !strings.Contains(a.Unplaced[0].Problem, "GPU 7 does not exist") {
		t.Errorf("v100-a unplaced: %+v", a.Unplaced)
	}
	b := inv[2]
	if g := b.GPUs[3]; !g.Unhealthy || g.Free != 0 {
		t.Errorf("v100-b GPU 3 is unhealthy: %+v", g)
	}
	if len(b.Unplaced) != 1 || b.Unplaced[0].Pod != "nvidia-placed" || !strings.Contains(b.Unplaced[0].Problem, "no gpufleet.io/gpu-indices") {
		t.Errorf("v100-b unplaced: %+v", b.Unplaced)
	}
}

func TestExplainGolden(t *testing.T) {
	pods := fixturePods()
	inv := BuildInventory(fixtureNodes(t), pods)
	events := []corev1.Event{{Reason: "FailedScheduling", Type: "Warning",
		Message: "0/4 nodes are available: 1 node(s) had GPU model T4 (pod requires V100M16|V100M32), 2 node(s) had no single GPU with 900 free milli-GPU."}}
	var b bytes.Buffer
	for _, name := range []string{"share-a", "whole", "nvidia-placed", "stale", "done", "cpu-only", "wants-900", "wants-t4", "wants-a100"} {
		for i := range pods {
			if pods[i].Name == name {
				var ev []corev1.Event
				if name == "wants-900" {
					ev = events
				}
				b.WriteString("$ kubectl gpufleet explain " + name + "\n")
				if err := Explain(&b, &pods[i], inv, ev); err != nil {
					t.Fatal(err)
				}
				b.WriteString("\n")
			}
		}
	}
	golden(t, "explain.golden", b.String())
}
