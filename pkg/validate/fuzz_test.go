package validate

import (
	"bytes"
	"testing"
)

// Whatever the bytes, the parsers return a set or an error, never panic,
// and a set they return is consistent.
func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("a,b,y,g\n1,2,3,x\n4,5,6,y\n"))
	f.Add([]byte("a,y\n1,NaN\n"))
	f.Add([]byte("\"a\nb\",y\n1,2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseCSV(bytes.NewReader(data), []string{"y"}, []string{"g"})
		if err != nil {
			return
		}
		if len(s.Inputs) != s.Rows*s.Width || len(s.Targets) != s.Rows*s.TargetWidth || len(s.Groups["g"]) != s.Rows {
			t.Fatalf("inconsistent set: %d rows x %d, %d inputs, %d targets", s.Rows, s.Width, len(s.Inputs), len(s.Targets))
		}
	})
}

func FuzzParseThresholds(f *testing.F) {
	f.Add([]byte("maxRMSE: 45\nwithin: {tolerance: 0.1, minShare: 0.9}\ngroupBy: g\nmaxBiasGap: 0.1\n"))
	f.Add([]byte("minR2: .nan\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		th, err := ParseThresholds(data)
		if err == nil && th.Validate() != nil {
			t.Fatal("ParseThresholds accepted what Validate refuses")
		}
	})
}

func FuzzParseSafetensorsSet(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSafetensorsSet(data)
		if err == nil && (len(s.Inputs) != s.Rows*s.Width || len(s.Targets) != s.Rows*s.TargetWidth) {
			t.Fatal("inconsistent set")
		}
	})
}
