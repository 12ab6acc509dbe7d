package forecast

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Store holds the series of many rates by key, at most MaxSeries of them.
// It is safe for concurrent use.
type Store struct {
	cfg       Config
	maxSeries int

	mu     sync.Mutex
	series map[string]*Series
}

// NewStore returns an empty store.
func NewStore(cfg Config, maxSeries int) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if maxSeries < 1 {
		return nil, fmt.Errorf("max series %d: want at least 1", maxSeries)
	}
	return &Store{cfg: cfg, maxSeries: maxSeries, series: map[string]*Series{}}, nil
}

// ErrFull is returned by Add for a new key when the store holds MaxSeries.
var ErrFull = errors.New("the forecast store holds its maximum number of series")

// Add records an observation of key's rate at t (Unix seconds).
func (s *Store) Add(key string, t int64, v float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ser, ok := s.series[key]
	if !ok {
		if len(s.series) >= s.maxSeries {
			return ErrFull
		}
		ser, _ = NewSeries(s.cfg) // cfg validated by NewStore
		s.series[key] = ser
	}
	ser.Add(t, v)
	return nil
}

// Predict is the series' Predict; ok is false for an unknown key.
func (s *Store) Predict(key string, t int64, horizon time.Duration) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ser, ok := s.series[key]
	if !ok {
		return 0, false
	}
	return ser.Predict(t, horizon)
}

// Retain forgets the series whose key keep rejects (deleted workloads).
func (s *Store) Retain(keep func(key string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.series {
		if !keep(k) {
			delete(s.series, k)
		}
	}
}

// Len is the number of series.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// saved is the file format: the configuration the buckets were made with
// and every series' ring.
type saved struct {
	Version     int
	Bucket      time.Duration
	HistoryDays int
	Series      map[string]savedSeries
}

type savedSeries struct {
	First, Last int64
	Sum         []float32
	N           []uint16
}

const fileVersion = 1

// Save writes every series to w.
func (s *Store) Save(w io.Writer) error {
	s.mu.Lock()
	out := saved{Version: fileVersion, Bucket: s.cfg.Bucket, HistoryDays: s.cfg.HistoryDays, Series: make(map[string]savedSeries, len(s.series))}
	for k, ser := range s.series {
		out.Series[k] = savedSeries{First: ser.first, Last: ser.last, Sum: append([]float32(nil), ser.sum...), N: append([]uint16(nil), ser.n...)}
	}
	s.mu.Unlock()
	return gob.NewEncoder(w).Encode(out)
}

// Load replaces the store's series with those read from r. A file made
// with another bucket or history length is refused (its buckets would
// mean something else); series beyond MaxSeries are dropped, keys in
// order.
func (s *Store) Load(r io.Reader) error {
	var in saved
	if err := gob.NewDecoder(r).Decode(&in); err != nil {
		return fmt.Errorf("decoding forecast history: %w", err)
	}
	if in.Version != fileVersion {
		return fmt.Errorf("forecast history version %d: this build reads %d", in.Version, fileVersion)
	}
	if in.Bucket != s.cfg.Bucket || in.HistoryDays != s.cfg.HistoryDays {
		return fmt.Errorf("forecast history made with %v buckets over %d days; configured: %v over %d days", in.Bucket, in.HistoryDays, s.cfg.Bucket, s.cfg.HistoryDays)
	}
	keys := make([]string, 0, len(in.Series))
	for k := range in.Series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	series := map[string]*Series{}
	for _, k := range keys {
		if len(series) >= s.maxSeries {
			break
		}
		v := in.Series[k]
		ser, _ := NewSeries(s.cfg)
		if len(v.Sum) != len(ser.sum) || len(v.N) != len(ser.n) {
			return fmt.Errorf("forecast history of %q: %d buckets, want %d", k, len(v.Sum), len(ser.sum))
		}
		if !(v.First == -1 && v.Last == -1) && !(v.First >= 0 && v.First <= v.Last) {
			return fmt.Errorf("forecast history of %q: bucket range %d..%d is not valid", k, v.First, v.Last)
		}
		ser.first, ser.last = v.First, v.Last
		copy(ser.sum, v.Sum)
		copy(ser.n, v.N)
		series[k] = ser
	}
	s.mu.Lock()
	s.series = series
	s.mu.Unlock()
	return nil
}

// SaveFile writes the store to path atomically (a temporary file in the
// same folder, then a rename).
func (s *Store) SaveFile(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".forecast-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := s.Save(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// LoadFile loads path; a missing file is no error (a first start).
func (s *Store) LoadFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.Load(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
