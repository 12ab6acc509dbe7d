// Command train-model trains gpufleet's reference model, a property
// valuation regressor, on a data set it generates, deterministically: the
// same flags give the same bytes. It writes a model directory the
// inference server loads (config.yaml, <version>/model.safetensors) and a
// README (in the version directory) with the test error.
//
//	go run ./hack/train-model --out models/property-value --version 1
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

var featureNames = []string{"area_m2", "bedrooms", "bathrooms", "age_years", "distance_to_center_km", "lot_m2", "garage", "condition"}

func main() {
	out := flag.String("out", "models/property-value", "model directory to write")
	name := flag.String("name", "", "model name (default: the directory's name)")
	version := flag.String("version", "1", "version directory to write")
	hidden := flag.Int("hidden", 32, "width of each hidden layer")
	layers := flag.Int("hidden-layers", 2, "number of hidden layers")
	epochs := flag.Int("epochs", 150, "passes over the training set")
	samples := flag.Int("samples", 10000, "data set size (80 % train, 20 % test)")
	seed := flag.Uint64("seed", 42, "seed of the data set and the initial weights")
	readme := flag.Bool("readme", true, "write README.md with the test error")
	priceScale := flag.Float64("price-scale", 1, "multiply every price of the data set (a shifted market: a candidate the quality gate must refuse)")
	flag.Parse()
	if *name == "" {
		*name = filepath.Base(*out)
	}
	if err := run(*out, *name, *version, *hidden, *layers, *epochs, *samples, *seed, *priceScale, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "train-model:", err)
		os.Exit(1)
	}
}

func run(out, name, version string, hidden, nHidden, epochs, samples int, seed uint64, priceScale float64, readme bool) error {
	if hidden < 1 || nHidden < 0 || epochs < 0 || samples < 10 || !(priceScale > 0) {
		return fmt.Errorf("bad flags: --hidden %d, --hidden-layers %d, --epochs %d, --samples %d, --price-scale %v", hidden, nHidden, epochs, samples, priceScale)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	x, y := dataset(rng, samples)
	for i := range y {
		y[i] *= priceScale
	}
	nTrain := samples * 8 / 10
	widths := []int{len(featureNames)}
	for range nHidden {
		widths = append(widths, hidden)
	}
	widths = append(widths, 1)
	net := newMLP(rng, widths)
	norm := fitNormalizer(x[:nTrain], y[:nTrain])
	trainX, trainY := norm.apply(x[:nTrain], y[:nTrain])
	net.train(rng, trainX, trainY, epochs, 64, 1e-3)
	net.fold(norm)

	rmse, mae, r2, baseline := evaluate(net, x[nTrain:], y[nTrain:], norm.yMean)
	fmt.Printf("model %s version %s: widths %v, %d epochs; test RMSE %.2f k$, MAE %.2f k$, R² %.4f (predicting the mean: RMSE %.2f k$)\n",
		name, version, widths, epochs, rmse, mae, r2, baseline)
	if err := write(out, name, version, net, widths, epochs, samples, seed, rmse, mae, r2, baseline, readme); err != nil {
		return err
	}
	if err := writeReference(filepath.Join(out, version, model.ReferenceFile), net, x[:nTrain]); err != nil {
		return err
	}
	return writeEvalSet(filepath.Join(out, version, "eval.csv"), x[nTrain:], y[nTrain:])
}

// writeEvalSet writes the held-out test split as the version's evaluation
// set (gpufleet validate): the features, the price, and the property type
// (a group for the bias check: a house has a lot of at least three times
// its floor area, else it is an apartment).
func writeEvalSet(path string, x [][]float64, y []float64) error {
	var b strings.Builder
	b.WriteString(strings.Join(featureNames, ",") + ",price_kusd,property_type\n")
	for i, row := range x {
		for _, v := range row {
			b.WriteString(strconv.FormatFloat(float64(float32(v)), 'g', -1, 32) + ",")
		}
		kind := "apartment"
		if row[5] >= 3*row[0] {
			kind = "house"
		}
		b.WriteString(strconv.FormatFloat(y[i], 'f', 3, 64) + "," + kind + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// dataset generates properties and their prices in thousands of dollars.
func dataset(rng *rand.Rand, n int) ([][]float64, []float64) {
	x := make([][]float64, n)
	y := make([]float64, n)
	for i := range n {
		area := 40 + 260*rng.Float64()
		bedrooms := clamp(math.Round(area/35+rng.NormFloat64()*0.7), 1, 7)
		bathrooms := clamp(math.Round(bedrooms/2+rng.NormFloat64()*0.5), 1, 4)
		age := 100 * rng.Float64()
		distance := 0.5 + 25*math.Pow(rng.Float64(), 1.5)
		lot := area * (1 + 5*rng.Float64())
		garage := 0.0
		if rng.Float64() < 0.55 {
			garage = 1
		}
		condition := float64(1 + rng.IntN(5))
		price := 2.6*area*math.Exp(-distance/18)*(1+0.08*(condition-3))*(1-0.004*math.Min(age, 60)) +
			12*bathrooms + 6*bedrooms + 18*garage + 0.04*lot + 25*math.Sqrt(area)
		price *= 1 + 0.05*rng.NormFloat64()
		x[i] = []float64{area, bedrooms, bathrooms, age, distance, lot, garage, condition}
		y[i] = price
	}
	return x, y
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

type normalizer struct {
	mean, std   []float64
	yMean, yStd float64
}

func fitNormalizer(x [][]float64, y []float64) normalizer {
	d := len(x[0])
	n := normalizer{mean: make([]float64, d), std: make([]float64, d)}
	for _, row := range x {
		for j, v := range row {
			n.mean[j] += v / float64(len(x))
		}
	}
	for _, row := range x {
		for j, v := range row {
			n.std[j] += (v - n.mean[j]) * (v - n.mean[j]) / float64(len(x))
		}
	}
	for j := range n.std {
		n.std[j] = math.Max(math.Sqrt(n.std[j]), 1e-6)
	}
	for _, v := range y {
		n.yMean += v / float64(len(y))
	}
	for _, v := range y {
		n.yStd += (v - n.yMean) * (v - n.yMean) / float64(len(y))
	}
	n.yStd = math.Sqrt(n.yStd)
	return n
}

func (n normalizer) apply(x [][]float64, y []float64) ([][]float64, []float64) {
	nx := make([][]float64, len(x))
	ny := make([]float64, len(y))
	for i, row := range x {
		nx[i] = make([]float64, len(row))
		for j, v := range row {
			nx[i][j] = (v - n.mean[j]) / n.std[j]
		}
		ny[i] = (y[i] - n.yMean) / n.yStd
	}
	return nx, ny
}

func evaluate(net *mlp, x [][]float64, y []float64, mean float64) (rmse, mae, r2, baseline float64) {
	var se, ae, base float64
	for i, row := range x {
		p := net.forward(row)[0]
		se += (p - y[i]) * (p - y[i])
		ae += math.Abs(p - y[i])
		base += (mean - y[i]) * (mean - y[i])
	}
	n := float64(len(x))
	return math.Sqrt(se / n), ae / n, 1 - se/base, math.Sqrt(base / n)
}

func write(out, name, version string, net *mlp, widths []int, epochs, samples int, seed uint64, rmse, mae, r2, baseline float64, readme bool) error {
	tensors := map[string]model.Tensor{}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "# Written by hack/train-model. See README.md.\nname: %s\nplatform: gpufleet-mlp\nmaxBatchSize: 64\nmaxQueueDelay: 2ms\ninputs:\n- name: features\n  datatype: FP32\n  shape: [%d]\noutputs:\n- name: price_kusd\n  datatype: FP32\n  shape: [1]\nlayers:\n", name, len(featureNames))
	for i, l := range net.layers {
		w := make([]float32, len(l.w))
		for j, v := range l.w {
			w[j] = float32(v)
		}
		b := make([]float32, len(l.b))
		for j, v := range l.b {
			b[j] = float32(v)
		}
		tensors[fmt.Sprintf("l%d.weight", i)] = model.Tensor{Shape: []int{l.in, l.out}, Data: w}
		tensors[fmt.Sprintf("l%d.bias", i)] = model.Tensor{Shape: []int{l.out}, Data: b}
		act := "relu"
		if i == len(net.layers)-1 {
			act = "identity"
		}
		fmt.Fprintf(&cfg, "- {weights: l%d.weight, bias: l%d.bias, activation: %s}\n", i, i, act)
	}
	data, err := model.EncodeSafetensors(tensors, map[string]string{"format": "pt", "trained_by": "hack/train-model"})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, version), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, version, model.WeightsFile), data, 0o644); err != nil {
		return err
	}
	cfgPath := filepath.Join(out, model.ConfigFile)
	if _, err := os.Stat(cfgPath); os.IsNotExist(err) {
		if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
			return err
		}
	}
	if !readme {
		return nil
	}
	doc := fmt.Sprintf(`# %[1]s, version %[2]s

A property valuation regressor, gpufleet's reference model: it predicts a
property's price in thousands of dollars from eight features, in this order:
%[3]s.

Trained by `+"`go run ./hack/train-model --out <dir> --version %[2]s --hidden %[4]d --hidden-layers %[5]d --epochs %[6]d --samples %[7]d --seed %[8]d`"+`,
deterministically (same flags, same bytes), on a data set the script
generates (%[7]d properties, 80 %% train, 20 %% test; price depends
non-linearly on size, distance to the centre, condition and age, with 5 %%
noise). Feature standardisation is folded into the first layer, so the
model takes raw features. The test split is `+"`eval.csv`"+` (the features,
price_kusd, and property_type: house when the lot is at least three times
the floor area, else apartment); `+"`gpufleet validate`"+` checks the version on
it against `+"`../validate.yaml`"+`. `+"`reference.json`"+` holds the training rows'
deciles of each feature and of the prediction: the server's drift metrics
compare live traffic with them.

Layers: %[9]v (ReLU between, identity out).

| on the test set | |
| --- | --- |
| RMSE | %.2[10]f k$ |
| MAE | %.2[11]f k$ |
| R² | %.4[12]f |
| RMSE of predicting the mean | %.2[13]f k$ |

Example request:

`+"```json"+`
{"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 8],
  "data": [120, 3, 2, 15, 4.5, 400, 1, 4]}]}
`+"```"+`
`, name, version, strings.Join(featureNames, ", "), widths[1%len(widths)], len(widths)-2, epochs, samples, seed, widths, rmse, mae, r2, baseline)
	return os.WriteFile(filepath.Join(out, version, "README.md"), []byte(doc), 0o644)
}
