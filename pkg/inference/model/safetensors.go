package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Tensor is a named float32 tensor read from a safetensors file.
type Tensor struct {
	Shape []int
	Data  []float32
}

// maxHeader bounds a safetensors header: real ones are kilobytes.
const maxHeader = 16 << 20

type tensorEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// ParseSafetensors decodes a safetensors file (an 8-byte little-endian
// header length, a JSON header naming each tensor's dtype, shape and byte
// range, then the data). F32, F16 and BF16 tensors are read as float32.
// Every range must lie inside the data, match its shape, and not overlap
// another.
func ParseSafetensors(data []byte) (map[string]Tensor, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: %d bytes is too short for the header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > maxHeader || n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: header of %d bytes does not fit (file has %d bytes, limit %d)", n, len(data), maxHeader)
	}
	header := map[string]json.RawMessage{}
	if err := json.Unmarshal(data[8:8+n], &header); err != nil {
		return nil, fmt.Errorf("safetensors: header: %w", err)
	}
	buf := data[8+n:]
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	out := map[string]Tensor{}
	for name, raw := range header {
		if name == "__metadata__" {
			continue
		}
		var e tensorEntry
		dec := json.NewDecoder(bytesReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q: dtype %q not supported (want F32, F16 or BF16)", name, e.DType)
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && count > math.MaxInt32/int64(d)) {
				return nil, fmt.Errorf("safetensors: tensor %q: bad shape %v", name, e.Shape)
			}
			count *= int64(d)
		}
		b, end := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || end < b || end > int64(len(buf)) {
			return nil, fmt.Errorf("safetensors: tensor %q: byte range [%d, %d) outside the %d data bytes", name, b, end, len(buf))
		}
		if end-b != count*size {
			return nil, fmt.Errorf("safetensors: tensor %q: %d bytes for shape %v of %s (want %d)", name, end-b, e.Shape, e.DType, count*size)
		}
		spans = append(spans, span{name, b, end})
		out[name] = Tensor{Shape: e.Shape, Data: decodeFloats(buf[b:end], e.DType)}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fmt.Errorf("safetensors: tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("safetensors: no tensors")
	}
	return out, nil
}

var dtypeSize = map[string]int64{"F32": 4, "F16": 2, "BF16": 2}

func decodeFloats(b []byte, dtype string) []float32 {
	switch dtype {
	case "F16":
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = HalfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out
	case "BF16":
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
		return out
	default:
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out
	}
}

// EncodeSafetensors writes F32 tensors in the safetensors format, in name
// order, with optional metadata.
func EncodeSafetensors(tensors map[string]Tensor, metadata map[string]string) ([]byte, error) {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var offset int64
	for _, n := range names {
		t := tensors[n]
		count := 1
		for _, d := range t.Shape {
			count *= d
		}
		if count != len(t.Data) {
			return nil, fmt.Errorf("tensor %q: %d values for shape %v", n, len(t.Data), t.Shape)
		}
		header[n] = tensorEntry{DType: "F32", Shape: t.Shape, DataOffsets: [2]int64{offset, offset + int64(4*count)}}
		offset += int64(4 * count)
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	// Pad the header with spaces to 8 bytes, as the format recommends.
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+int(offset))
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, n := range names {
		for _, v := range tensors[n].Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	}
	return out, nil
}
