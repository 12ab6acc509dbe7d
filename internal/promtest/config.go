package promtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"
)

// The scrape jobs, and their file_sd files in the server's directory.
const (
	podsJob    = "pods"
	agentsJob  = "agents"
	podsFile   = "pods.json"
	agentsFile = "agents.json"
)

// Target is an endpoint Prometheus scrapes at http://Addr/metrics.
type Target struct {
	// Addr is host:port, e.g. "127.0.0.1:41234".
	Addr string
	// Labels are added to every series of the target, e.g. namespace and
	// pod for an inference pod, node for a gpu-agent.
	Labels map[string]string
	// Agent marks a gpu-agent: its job honors the series' own labels, so the
	// namespace and pod labels of per-pod series win over target labels.
	Agent bool
}

// The parts of prometheus.yml the server uses.
type promConfig struct {
	Global        globalConfig   `json:"global"`
	ScrapeConfigs []scrapeConfig `json:"scrape_configs"`
}

type globalConfig struct {
	ScrapeInterval string `json:"scrape_interval"`
	ScrapeTimeout  string `json:"scrape_timeout"`
}

type scrapeConfig struct {
	JobName       string         `json:"job_name"`
	HonorLabels   bool           `json:"honor_labels,omitempty"`
	FileSDConfigs []fileSDConfig `json:"file_sd_configs"`
}

type fileSDConfig struct {
	Files           []string `json:"files"`
	RefreshInterval string   `json:"refresh_interval"`
}

// targetGroup is one entry of a file_sd file.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// promDuration writes d in Prometheus' duration syntax with one unit.
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// writeConfig writes prometheus.yml into dir: a pods job and an agents job
// (honor_labels), both discovering their targets from a file in dir that
// SetTargets rewrites. file_sd watches the files with inotify and rereads
// them every second besides.
func writeConfig(dir string, interval time.Duration) (string, error) {
	timeout := min(interval, 10*time.Second)
	job := func(name, file string, honor bool) scrapeConfig {
		return scrapeConfig{
			JobName:     name,
			HonorLabels: honor,
			FileSDConfigs: []fileSDConfig{{
				Files:           []string{filepath.Join(dir, file)},
				RefreshInterval: "1s",
			}},
		}
	}
	cfg := promConfig{
		Global: globalConfig{
			ScrapeInterval: promDuration(interval),
			ScrapeTimeout:  promDuration(timeout),
		},
		ScrapeConfigs: []scrapeConfig{
			job(podsJob, podsFile, false),
			job(agentsJob, agentsFile, true),
		},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding prometheus.yml: %w", err)
	}
	path := filepath.Join(dir, "prometheus.yml")
	return path, writeAtomic(path, b)
}

// writeTargets writes the file_sd files of the pods and agents jobs.
func writeTargets(dir string, targets []Target) error {
	pods, agents := []targetGroup{}, []targetGroup{}
	for i, t := range targets {
		if t.Addr == "" {
			return fmt.Errorf("target %d has no address", i)
		}
		g := targetGroup{Targets: []string{t.Addr}, Labels: t.Labels}
		if t.Agent {
			agents = append(agents, g)
		} else {
			pods = append(pods, g)
		}
	}
	var errs []error
	for file, groups := range map[string][]targetGroup{podsFile: pods, agentsFile: agents} {
		b, err := json.MarshalIndent(groups, "", "  ")
		if err != nil {
			errs = append(errs, fmt.Errorf("encoding %s: %w", file, err))
			continue
		}
		errs = append(errs, writeAtomic(filepath.Join(dir, file), b))
	}
	return errors.Join(errs...)
}

// writeAtomic replaces path with data through a temporary file and a
// rename, so that Prometheus never reads a half-written file. The temporary
// name does not match the file_sd patterns.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
