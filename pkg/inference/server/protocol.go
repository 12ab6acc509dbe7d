package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/gpufleet/gpufleet/pkg/inference/model"
)

// Open Inference Protocol v2 (KServe / Triton REST) messages.

// ServerMetadata answers GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// ModelMetadata answers GET /v2/models/{name}[/versions/{version}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// TensorMetadata describes a tensor; -1 is the variable batch dimension.
type TensorMetadata struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

// InferRequest is the body of POST .../infer.
type InferRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Inputs     []RequestInput  `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs,omitempty"`
}

// RequestInput is one input tensor. Data is row-major, flat or nested.
type RequestInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// RequestOutput asks for one output by name.
type RequestOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// ErrorResponse is every error's body.
type ErrorResponse struct {
	Error string `json:"error"`
}

// badRequest is a client error: the message says what to fix.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// decodeInfer parses and checks an inference request against the model's
// input: one tensor named as the model says, of its datatype, shaped
// [batch, width]. It returns the rows as float32 and the batch size.
func decodeInfer(body []byte, spec model.TensorSpec, outSpec model.TensorSpec, maxBatch int) (*InferRequest, []float32, int, error) {
	req := &InferRequest{}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(req); err != nil {
		return nil, nil, 0, badf("malformed JSON request: %v", err)
	}
	if dec.More() {
		return nil, nil, 0, badf("malformed JSON request: data after the request object")
	}
	if len(req.Inputs) != 1 {
		return nil, nil, 0, badf("expected 1 input (%q), got %d", spec.Name, len(req.Inputs))
	}
	in := req.Inputs[0]
	if in.Name != spec.Name {
		return nil, nil, 0, badf("unexpected input %q: the model's input is %q", in.Name, spec.Name)
	}
	if in.Datatype != spec.Datatype {
		return nil, nil, 0, badf("input %q: datatype %q, the model takes %q", in.Name, in.Datatype, spec.Datatype)
	}
	width := spec.Shape[0]
	if len(in.Shape) != 2 || in.Shape[1] != int64(width) || in.Shape[0] < 1 {
		return nil, nil, 0, badf("input %q: shape %v, want [batch, %d] with batch >= 1", in.Name, in.Shape, width)
	}
	if in.Shape[0] > int64(maxBatch) {
		return nil, nil, 0, badf("input %q: batch of %d rows is over the model's maximum of %d", in.Name, in.Shape[0], maxBatch)
	}
	for _, o := range req.Outputs {
		if o.Name != outSpec.Name {
			return nil, nil, 0, badf("unknown output %q: the model's output is %q", o.Name, outSpec.Name)
		}
	}
	batch := int(in.Shape[0])
	want := batch * width
	rows := make([]float32, 0, want)
	rows, err := parseData(in.Data, in.Datatype, rows, want)
	if err != nil {
		return nil, nil, 0, badf("input %q: %v", in.Name, err)
	}
	if len(rows) != want {
		return nil, nil, 0, badf("input %q: %d values for shape %v (want %d)", in.Name, len(rows), in.Shape, want)
	}
	return req, rows, batch, nil
}

// parseData reads a JSON array of the datatype's values, nested arrays
// flattened in row-major order, appending to dst. It stops with an error
// past limit values, so a huge body cannot allocate without bound.
func parseData(data json.RawMessage, datatype string, dst []float32, limit int) ([]float32, error) {
	p := dataParser{b: data, dst: dst, limit: limit, datatype: datatype}
	p.skipSpace()
	if p.i >= len(p.b) || p.b[p.i] != '[' {
		return nil, errors.New("data must be a JSON array")
	}
	if err := p.array(0); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i != len(p.b) {
		return nil, errors.New("data: unexpected text after the array")
	}
	return p.dst, nil
}

type dataParser struct {
	b        []byte
	i        int
	dst      []float32
	limit    int
	datatype string
}

const maxNesting = 8

func (p *dataParser) skipSpace() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\n' || p.b[p.i] == '\t' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *dataParser) array(depth int) error {
	if depth > maxNesting {
		return errors.New("data: arrays nested too deep")
	}
	p.i++ // '['
	p.skipSpace()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.b) {
			return errors.New("data: unterminated array")
		}
		if p.b[p.i] == '[' {
			if err := p.array(depth + 1); err != nil {
				return err
			}
		} else if err := p.value(); err != nil {
			return err
		}
		p.skipSpace()
		if p.i >= len(p.b) {
			return errors.New("data: unterminated array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return fmt.Errorf("data: unexpected %q at offset %d", p.b[p.i], p.i)
		}
	}
}

func (p *dataParser) value() error {
	if len(p.dst) >= p.limit {
		return fmt.Errorf("more values than the shape holds (%d)", p.limit)
	}
	start := p.i
	for p.i < len(p.b) && p.b[p.i] != ',' && p.b[p.i] != ']' && p.b[p.i] != ' ' && p.b[p.i] != '\n' && p.b[p.i] != '\t' && p.b[p.i] != '\r' {
		p.i++
	}
	tok := string(p.b[start:p.i])
	v, err := convert(tok, p.datatype)
	if err != nil {
		return fmt.Errorf("value %d: %w", len(p.dst), err)
	}
	p.dst = append(p.dst, v)
	return nil
}

// convert reads one JSON token as the datatype and returns it as the
// float32 the model computes with.
func convert(tok, datatype string) (float32, error) {
	switch datatype {
	case "BOOL":
		switch tok {
		case "true":
			return 1, nil
		case "false":
			return 0, nil
		}
		return 0, fmt.Errorf("%q is not a BOOL (true or false)", truncate(tok))
	case "INT32", "INT64":
		bits := 32
		if datatype == "INT64" {
			bits = 64
		}
		n, err := strconv.ParseInt(tok, 10, bits)
		if err != nil {
			return 0, fmt.Errorf("%q is not an %s", truncate(tok), datatype)
		}
		return float32(n), nil
	}
	if !isJSONNumber(tok) {
		return 0, fmt.Errorf("%q is not a number", truncate(tok))
	}
	f, err := strconv.ParseFloat(tok, 32)
	if err != nil || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is outside the %s range", truncate(tok), datatype)
	}
	if datatype == "FP16" {
		h := model.RoundHalf(float32(f))
		if math.IsInf(float64(h), 0) {
			return 0, fmt.Errorf("%s is outside the FP16 range", truncate(tok))
		}
		return h, nil
	}
	return float32(f), nil
}

// isJSONNumber checks the JSON number grammar (ParseFloat alone would take
// "Inf", "0x1p3" or "1_000").
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// appendInferResponse writes the response body for one output of batch
// rows, without reflection: this is the hot path.
func appendInferResponse(buf []byte, modelName, version, id string, out model.TensorSpec, values []float32, batch int) ([]byte, error) {
	buf = append(buf, `{"model_name":`...)
	buf = strconv.AppendQuote(buf, modelName)
	buf = append(buf, `,"model_version":`...)
	buf = strconv.AppendQuote(buf, version)
	if id != "" {
		buf = append(buf, `,"id":`...)
		buf = strconv.AppendQuote(buf, id)
	}
	buf = append(buf, `,"outputs":[{"name":`...)
	buf = strconv.AppendQuote(buf, out.Name)
	buf = append(buf, `,"datatype":`...)
	buf = strconv.AppendQuote(buf, out.Datatype)
	buf = append(buf, `,"shape":[`...)
	buf = strconv.AppendInt(buf, int64(batch), 10)
	buf = append(buf, ',')
	buf = strconv.AppendInt(buf, int64(out.Shape[0]), 10)
	buf = append(buf, `],"data":[`...)
	for i, v := range values {
		if out.Datatype == "FP16" {
			v = model.RoundHalf(v)
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("model %s version %s produced a non-finite value (%v) at output %d", modelName, version, v, i)
		}
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendFloat(buf, float64(v), 'g', -1, 32)
	}
	return append(buf, "]}]}"...), nil
}
