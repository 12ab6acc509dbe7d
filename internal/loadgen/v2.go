package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// tensorSpec is an input or output in v2 model metadata.
type tensorSpec struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// modelMetadata is the answer to GET /v2/models/{name}.
type modelMetadata struct {
	Name   string       `json:"name"`
	Inputs []tensorSpec `json:"inputs"`
}

// v2Input and v2Request are an Open Inference Protocol v2 request.
type v2Input struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
	Data     []any   `json:"data"`
}

type v2Request struct {
	Inputs []v2Input `json:"inputs"`
}

// V2Request builds an inference request body for model as the server at
// base (http://host:port) describes it (GET /v2/models/{model}): its one
// input, rows rows of it (the batch dimension, -1 in the metadata), filled
// with small valid values of the input's datatype.
func V2Request(ctx context.Context, client *http.Client, base, model string, rows int) ([]byte, error) {
	url := strings.TrimRight(base, "/") + "/v2/models/" + model
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("model metadata: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("model metadata from %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("model metadata from %s: %s: %s", url, resp.Status, body)
	}
	var md modelMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("model metadata from %s: %w", url, err)
	}
	return buildV2Request(md.Inputs, rows)
}

// buildV2Request is V2Request's body for inputs as model metadata lists them.
func buildV2Request(inputs []tensorSpec, rows int) ([]byte, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("model has %d inputs; want exactly one", len(inputs))
	}
	in := inputs[0]
	if len(in.Shape) == 0 || in.Shape[0] != -1 {
		return nil, fmt.Errorf("input %s has shape %v; want a batch dimension (-1) first", in.Name, in.Shape)
	}
	if rows < 1 {
		return nil, fmt.Errorf("rows %d: want at least 1", rows)
	}
	shape := append([]int64{int64(rows)}, in.Shape[1:]...)
	n := int64(1)
	for _, d := range shape {
		if d < 1 {
			return nil, fmt.Errorf("input %s has shape %v; want fixed sizes after the batch dimension", in.Name, in.Shape)
		}
		n *= d
	}
	data := make([]any, n)
	for i := range data {
		switch in.Datatype {
		case "FP32", "FP16", "FP64":
			data[i] = 0.5 + float64(i%7)
		case "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64":
			data[i] = 1 + i%7
		case "BOOL":
			data[i] = i%2 == 0
		default:
			return nil, fmt.Errorf("input %s: datatype %q is not supported", in.Name, in.Datatype)
		}
	}
	return json.Marshal(v2Request{Inputs: []v2Input{{Name: in.Name, Datatype: in.Datatype, Shape: shape, Data: data}}})
}
