package app

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTrace(t *testing.T) (nodes, pods string) {
	t.Helper()
	dir := t.TempDir()
	nodes, pods = filepath.Join(dir, "nodes.csv"), filepath.Join(dir, "pods.csv")
	n := "sn,cpu_milli,memory_mib,gpu,model\nv0,96000,524288,8,V100M16\nv1,96000,524288,8,V100M16\nt0,32000,131072,2,T4\n"
	p := "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,creation_time,deletion_time\n" +
		"a,8000,1024,1,1000,,0,100\nb,4000,1024,1,500,,5,50\nc,4000,1024,1,300,T4,6,60\nd,2000,1024,0,0,,7,0\ne,16000,1024,2,1000,,8,90\n"
	if err := os.WriteFile(nodes, []byte(n), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pods, []byte(p), 0o644); err != nil {
		t.Fatal(err)
	}
	return nodes, pods
}

// The --json contract the benchmarks read: one object per policy with
// every field, 131 points per curve.
func TestJSONContract(t *testing.T) {
	nodes, pods := writeTrace(t)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := Main([]string{"--nodes", nodes, "--pods", pods, "--policy", "bestfit,fgd,gpufleet", "--seed", "42", "--inflation", "1.3", "--json",
		"--csv", filepath.Join(dir, "run"), "--plot", filepath.Join(dir, "alloc.png")}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one JSON line per policy, got %d:\n%s", len(lines), out.String())
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"policy", "seed", "total_gpus", "alloc_pct", "frag_ratio_pct", "pods_scheduled", "pods_failed", "wall_seconds"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %d lacks %q: %s", i, k, line)
			}
		}
		if n := len(m["alloc_pct"].([]any)); n != 131 {
			t.Errorf("alloc_pct has %d points", n)
		}
		if m["policy"] != []string{"bestfit", "fgd", "gpufleet"}[i] || m["total_gpus"].(float64) != 18 {
			t.Errorf("line %d: policy %v, total_gpus %v", i, m["policy"], m["total_gpus"])
		}
	}
	csvData, err := os.ReadFile(filepath.Join(dir, "run_allo_discrete.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(csvData)), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[0], "workload,sc_policy,tune,seed,total_gpus,0,1,") || !strings.HasPrefix(rows[1], "pods,bestfit,1.3,42,18,") {
		t.Errorf("paper-format CSV:\n%s", csvData)
	}
	if _, err := os.Stat(filepath.Join(dir, "run_frag_ratio_discrete.csv")); err != nil {
		t.Error(err)
	}
	png, err := os.ReadFile(filepath.Join(dir, "alloc.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("plot is not a PNG (%v)", err)
	}
}

func TestReplayJSON(t *testing.T) {
	nodes, pods := writeTrace(t)
	var out, errOut bytes.Buffer
	if code := Main([]string{"--nodes", nodes, "--pods", pods, "--replay", "--sample-seconds", "10", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var r struct {
		Mode        string `json:"mode"`
		PodsArrived int    `json:"pods_arrived"`
		Samples     []struct {
			T int64 `json:"t"`
		} `json:"samples"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Mode != "replay" || r.PodsArrived != 5 || len(r.Samples) == 0 {
		t.Errorf("replay result: %s", out.String())
	}
}

// Bad flags: every problem at once, exit 2, nothing run.
func TestValidationReportsEveryProblem(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"--policy", "bestfit,tetris", "--inflation", "0", "--sample-seconds", "-1"}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"--nodes is required", "--pods is required", `--policy "tetris"`, "--inflation 0", "--sample-seconds -1"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}

// A malformed trace is an error naming the file and line.
func TestBadTrace(t *testing.T) {
	nodes, _ := writeTrace(t)
	bad := filepath.Join(t.TempDir(), "pods.csv")
	if err := os.WriteFile(bad, []byte("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,2,500\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"--nodes", nodes, "--pods", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "pods.csv:2") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}
