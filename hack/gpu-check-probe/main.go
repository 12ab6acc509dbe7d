// Command gpu-check-probe is hack/gpu-check's helper, carried to the GPU
// machine as a static binary (that machine has no Go):
//
//	gpu-check-probe wide-model DIR
//	    writes a model repository entry "wide" (a 1024-2048-2048-16 MLP with
//	    tanh, relu and identity layers, seeded random weights) into DIR, so
//	    the CUDA comparison also covers products large enough for cuBLAS to
//	    pick its GPU kernels.
//	gpu-check-probe compare --cpu URL --cuda URL --model NAME [--rows N]
//	    sends the same random v2 requests (batches of 1, 7 and 64 rows) to
//	    an inference server on the CPU and one on CUDA and checks that every
//	    output agrees within the tolerance below.
//	gpu-check-probe agent-metrics URL GPUS
//	    reads the gpu-agent's /metrics and checks that each of GPUS GPUs has
//	    its info, utilization, memory and power series with plausible values.
//
// Each prints what it checked and exits 1 with every failure named.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	infmodel "github.com/gpufleet/gpufleet/pkg/inference/model"
)

// tolerance is how far a CUDA output may be from the CPU's: relative to
// max(1, |cpu|). FP32 sums in a different order (and cuBLAS's own blocking)
// differ by a few ulps per product; 1e-3 still catches a wrong layout, a
// dropped bias or TF32 math on 1024-long sums.
const tolerance = 1e-3

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "wide-model":
		if len(os.Args) != 3 {
			usage()
		}
		err = wideModel(os.Args[2])
	case "compare":
		err = compare(os.Args[2:])
	case "agent-metrics":
		if len(os.Args) != 4 {
			usage()
		}
		err = agentMetrics(os.Args[2], os.Args[3])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpu-check-probe:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gpu-check-probe wide-model DIR | compare --cpu URL --cuda URL --model NAME [--rows N] | agent-metrics URL GPUS")
	os.Exit(2)
}

// wideModel writes DIR/wide/config.yaml and DIR/wide/1/model.safetensors.
func wideModel(dir string) error {
	widths := []int{1024, 2048, 2048, 16}
	acts := []string{"tanh", "relu", "identity"}
	rng := rand.New(rand.NewPCG(7, 7))
	tensors := map[string]infmodel.Tensor{}
	var layers strings.Builder
	for i := range acts {
		in, out := widths[i], widths[i+1]
		w := make([]float32, in*out)
		scale := float32(1 / math.Sqrt(float64(in)))
		for j := range w {
			w[j] = (rng.Float32()*2 - 1) * scale
		}
		b := make([]float32, out)
		for j := range b {
			b[j] = rng.Float32()*0.2 - 0.1
		}
		tensors[fmt.Sprintf("l%d.weight", i)] = infmodel.Tensor{Shape: []int{in, out}, Data: w}
		tensors[fmt.Sprintf("l%d.bias", i)] = infmodel.Tensor{Shape: []int{out}, Data: b}
		fmt.Fprintf(&layers, "- {weights: l%d.weight, bias: l%d.bias, activation: %s}\n", i, i, acts[i])
	}
	data, err := infmodel.EncodeSafetensors(tensors, map[string]string{"written_by": "hack/gpu-check-probe"})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "wide", "1"), 0o755); err != nil {
		return err
	}
	cfg := fmt.Sprintf("name: wide\nplatform: gpufleet-mlp\nmaxBatchSize: 64\ninputs:\n- {name: x, datatype: FP32, shape: [%d]}\noutputs:\n- {name: y, datatype: FP32, shape: [%d]}\nlayers:\n%s",
		widths[0], widths[len(widths)-1], layers.String())
	if err := os.WriteFile(filepath.Join(dir, "wide", "config.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "wide", "1", "model.safetensors"), data, 0o644)
}

type inferResponse struct {
	Outputs []struct {
		Name  string    `json:"name"`
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	} `json:"outputs"`
}

func compare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	cpuURL := fs.String("cpu", "", "inference server on --device=cpu")
	cudaURL := fs.String("cuda", "", "inference server on --device=cuda")
	name := fs.String("model", "", "model to compare")
	requests := fs.Int("requests", 20, "requests per batch size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuURL == "" || *cudaURL == "" || *name == "" {
		return fmt.Errorf("compare needs --cpu, --cuda and --model")
	}
	var meta struct {
		Inputs []struct {
			Name     string `json:"name"`
			Datatype string `json:"datatype"`
			Shape    []int  `json:"shape"`
		} `json:"inputs"`
	}
	if err := getJSON(*cpuURL+"/v2/models/"+*name, &meta); err != nil {
		return err
	}
	if len(meta.Inputs) != 1 || len(meta.Inputs[0].Shape) != 2 {
		return fmt.Errorf("model %s: metadata inputs %+v, want one [-1, n] input", *name, meta.Inputs)
	}
	in := meta.Inputs[0]
	width := in.Shape[1]
	rng := rand.New(rand.NewPCG(11, 13))
	var worst float64
	compared, failures := 0, 0
	for _, batch := range []int{1, 7, 64} {
		for r := range *requests {
			data := make([]float64, batch*width)
			for i := range data {
				data[i] = float64(float32(rng.NormFloat64()))
			}
			body, _ := json.Marshal(map[string]any{"id": strconv.Itoa(r), "inputs": []map[string]any{{
				"name": in.Name, "datatype": in.Datatype, "shape": []int{batch, width}, "data": data}}})
			var want, got inferResponse
			if err := postJSON(*cpuURL+"/v2/models/"+*name+"/versions/1/infer", body, &want); err != nil {
				return fmt.Errorf("CPU server: %w", err)
			}
			if err := postJSON(*cudaURL+"/v2/models/"+*name+"/versions/1/infer", body, &got); err != nil {
				return fmt.Errorf("CUDA server: %w", err)
			}
			if len(want.Outputs) != 1 || len(got.Outputs) != 1 || len(want.Outputs[0].Data) != len(got.Outputs[0].Data) {
				return fmt.Errorf("batch %d: output shapes differ: CPU %+v, CUDA %+v", batch, shapes(want), shapes(got))
			}
			outWidth := len(want.Outputs[0].Data) / batch
			for i, w := range want.Outputs[0].Data {
				g := got.Outputs[0].Data[i]
				d := math.Abs(g-w) / math.Max(1, math.Abs(w))
				if math.IsNaN(g) || d > tolerance {
					if failures < 5 {
						fmt.Printf("MISMATCH model %s batch %d row %d column %d: CPU %g, CUDA %g\n", *name, batch, i/outWidth, i%outWidth, w, g)
					}
					failures++
				}
				worst = math.Max(worst, d)
				compared++
			}
		}
	}
	fmt.Printf("compare model=%s values=%d mismatches=%d max_rel_diff=%.2e tolerance=%.0e\n", *name, compared, failures, worst, tolerance)
	if failures > 0 {
		return fmt.Errorf("%d of %d CUDA outputs of %s differ from the CPU's by more than %.0e", failures, compared, *name, tolerance)
	}
	return nil
}

func shapes(r inferResponse) [][]int {
	var out [][]int
	for _, o := range r.Outputs {
		out = append(out, o.Shape)
	}
	return out
}

var client = &http.Client{Timeout: 30 * time.Second}

func getJSON(url string, v any) error {
	data, err := body(client.Get(url))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return json.Unmarshal(data, v)
}

func postJSON(url string, payload []byte, v any) error {
	data, err := body(client.Post(url, "application/json", bytes.NewReader(payload)))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return json.Unmarshal(data, v)
}

// body reads a 200 answer's body; any other status is an error with it.
func body(resp *http.Response, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return data, nil
}

// agentMetrics checks the gpu-agent's exposition for gpus GPUs.
func agentMetrics(url, gpus string) error {
	n, err := strconv.Atoi(gpus)
	if err != nil || n < 1 {
		return fmt.Errorf("GPUS %q: want a positive count", gpus)
	}
	data, err := body(client.Get(url))
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: not a Prometheus text exposition: %w", url, err)
	}
	// Each GPU needs these series, with a value in the range.
	need := map[string][2]float64{
		"gpufleet_gpu_info":                {1, 1},
		"gpufleet_gpu_utilization_ratio":   {0, 1},
		"gpufleet_gpu_memory_used_bytes":   {0, math.Inf(1)},
		"gpufleet_gpu_memory_total_bytes":  {1 << 30, math.Inf(1)},
		"gpufleet_gpu_power_watts":         {1, 2000},
		"gpufleet_gpu_temperature_celsius": {1, 120},
		"gpufleet_gpu_healthy":             {1, 1},
	}
	var problems []string
	for metric, bounds := range need {
		fam, ok := fams[metric]
		if !ok {
			problems = append(problems, "no "+metric)
			continue
		}
		seen := map[string]bool{}
		for _, m := range fam.GetMetric() {
			gpu := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "gpu" {
					gpu = l.GetValue()
				}
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			if v < bounds[0] || v > bounds[1] || math.IsNaN(v) {
				problems = append(problems, fmt.Sprintf("%s{gpu=%q} = %g, want %g..%g", metric, gpu, v, bounds[0], bounds[1]))
			}
			seen[gpu] = true
		}
		if len(seen) != n {
			problems = append(problems, fmt.Sprintf("%s has %d GPU(s), want %d", metric, len(seen), n))
		}
	}
	series := 0
	for name, fam := range fams {
		if strings.HasPrefix(name, "gpufleet_") {
			series += len(fam.GetMetric())
		}
	}
	fmt.Printf("agent-metrics gpus=%d gpufleet_series=%d problems=%d\n", n, series, len(problems))
	if len(problems) > 0 {
		return fmt.Errorf("gpu-agent /metrics: %s", strings.Join(problems, "; "))
	}
	return nil
}
