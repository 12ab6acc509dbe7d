// Command test-stress reruns test packages many times under CPU pressure to
// find tests that fail by timing (a flaky test is a bug). `make
// test-stress` runs it; it is not part of `make test`.
//
// Each package's test binary is built once (go test -c), then run --runs
// times, --parallel binaries at once, while --burn goroutines keep the CPUs
// busy. Every failed run's output is kept under --out; the report lists
// each failing test with its failure count and the first failure's log.
// The last line is:
//
//	stress packages=P runs=R failed_runs=F flaky_tests=T broken_tests=B
//
// A test that failed in some runs only is flaky; one that failed in every
// run is broken.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	runs := flag.Int("runs", 10, "runs of each package's tests")
	parallel := flag.Int("parallel", 2*runtime.NumCPU(), "test binaries running at once")
	burn := flag.Int("burn", runtime.NumCPU(), "goroutines that keep the CPUs busy meanwhile")
	run := flag.String("run", "", "only tests matching this regexp (go test -run)")
	short := flag.Bool("short", true, "pass -test.short (unit tests only: no control plane)")
	timeout := flag.Duration("timeout", 10*time.Minute, "timeout of one run of one package")
	out := flag.String("out", "_output/stress", "where failed runs' logs go")
	flag.Parse()
	pkgs := flag.Args()
	if len(pkgs) == 0 {
		pkgs = []string{"./..."}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &stress{runs: *runs, parallel: *parallel, burn: *burn, run: *run, short: *short, timeout: *timeout, out: *out}
	if err := s.main(ctx, pkgs); err != nil {
		fmt.Fprintln(os.Stderr, "test-stress:", err)
		os.Exit(1)
	}
}

type stress struct {
	runs, parallel, burn int
	run                  string
	short                bool
	timeout              time.Duration
	out                  string

	mu         sync.Mutex
	failedRuns int
	// failures counts, per package and test, the runs it failed in;
	// firstLog is the log of the first.
	failures map[string]int
	firstLog map[string]string
}

func (s *stress) main(ctx context.Context, patterns []string) error {
	if s.runs < 1 || s.parallel < 1 || s.burn < 0 {
		return fmt.Errorf("--runs and --parallel must be at least 1, --burn at least 0")
	}
	if s.run != "" {
		if _, err := regexp.Compile(s.run); err != nil {
			return fmt.Errorf("--run: %w", err)
		}
	}
	pkgs, err := testPackages(ctx, patterns)
	if err != nil {
		return err
	}
	binDir, err := os.MkdirTemp("", "test-stress-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(binDir) }()
	if err := os.MkdirAll(s.out, 0o755); err != nil {
		return err
	}
	fmt.Printf("building %d test binaries\n", len(pkgs))
	s.failures, s.firstLog = map[string]int{}, map[string]string{}
	bins := map[string]string{}
	var built []testPackage
	for _, p := range pkgs {
		bin := filepath.Join(binDir, strings.ReplaceAll(p.importPath, "/", "_")+".test")
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, p.importPath)
		if b, err := cmd.CombinedOutput(); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Reported with the rest; the other packages still run.
			key := p.importPath + " (tests do not build)"
			s.failures[key] = s.runs
			s.firstLog[key] = filepath.Join(s.out, strings.ReplaceAll(p.importPath, "/", "_")+"-build.log")
			_ = os.WriteFile(s.firstLog[key], b, 0o644)
			continue
		}
		bins[p.importPath] = bin
		built = append(built, p)
	}
	pkgs = built
	burnCtx, stopBurn := context.WithCancel(ctx)
	defer stopBurn()
	for range s.burn {
		go spin(burnCtx)
	}
	type job struct {
		pkg testPackage
		n   int
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var done atomic.Int64
	total := len(pkgs) * s.runs
	start := time.Now()
	for range s.parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				s.runOnce(ctx, j.pkg, bins[j.pkg.importPath], j.n)
				if d := done.Add(1); d%int64(max(1, total/20)) == 0 {
					fmt.Printf("%d/%d runs, %s\n", d, total, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	// Run after run, every package in each, so a slow package does not
	// run alone at the end.
	for n := range s.runs {
		for _, p := range pkgs {
			select {
			case jobs <- job{p, n}:
			case <-ctx.Done():
			}
		}
	}
	close(jobs)
	wg.Wait()
	stopBurn()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.report(len(pkgs), total)
	return nil
}

type testPackage struct{ importPath, dir string }

// testPackages lists the packages matching patterns that have tests.
func testPackages(ctx context.Context, patterns []string) ([]testPackage, error) {
	args := append([]string{"list", "-f", "{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{end}}"}, patterns...)
	b, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %w", strings.Join(patterns, " "), err)
	}
	var out []testPackage
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if path, dir, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok {
			out = append(out, testPackage{path, dir})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no test packages match %s", strings.Join(patterns, " "))
	}
	return out, nil
}

var failLine = regexp.MustCompile(`^\s*--- FAIL: (\S+)`)

// runOnce runs one package's tests once, in its directory as go test does.
func (s *stress) runOnce(ctx context.Context, p testPackage, bin string, n int) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := []string{"-test.count=1", "-test.v", "-test.timeout=" + s.timeout.String()}
	if s.short {
		args = append(args, "-test.short")
	}
	if s.run != "" {
		args = append(args, "-test.run="+s.run)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = p.dir
	cmd.WaitDelay = 10 * time.Second
	b, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil && ctx.Err() != context.DeadlineExceeded {
		return
	}
	var tests []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := failLine.FindStringSubmatch(sc.Text()); m != nil {
			tests = append(tests, m[1])
		}
	}
	if len(tests) == 0 {
		// A panic, a timeout or a failed TestMain: no test to name.
		tests = []string{"(package: " + firstLine(err.Error()) + ")"}
	}
	logPath := filepath.Join(s.out, fmt.Sprintf("%s-run%d.log", strings.ReplaceAll(p.importPath, "/", "_"), n))
	_ = os.WriteFile(logPath, b, 0o644)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failedRuns++
	for _, t := range tests {
		key := p.importPath + " " + t
		if s.failures[key] == 0 {
			s.firstLog[key] = logPath
		}
		s.failures[key]++
	}
}

func (s *stress) report(pkgs, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.failures))
	for k := range s.failures {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	flaky, broken := 0, 0
	for _, k := range keys {
		// A test that failed every run is broken, not flaky.
		what := "FLAKY"
		if s.failures[k] == s.runs {
			what = "BROKEN"
			broken++
		} else {
			flaky++
		}
		fmt.Printf("%s %s: failed %d of %d runs (first: %s)\n", what, k, s.failures[k], s.runs, s.firstLog[k])
	}
	fmt.Printf("stress packages=%d runs=%d failed_runs=%d flaky_tests=%d broken_tests=%d\n", pkgs, total, s.failedRuns, flaky, broken)
}

// spin keeps one CPU busy until ctx ends.
func spin(ctx context.Context) {
	x := uint64(1)
	for ctx.Err() == nil {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
