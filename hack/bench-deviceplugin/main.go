// Command bench-deviceplugin measures gpu-agent's device plugin on the
// local real node (make bench-deviceplugin): pods of mixed GPU shapes
// created at once, create-to-Running with the plugin's devices against the
// same pods asking for no device (side by side, alternating, several
// rounds: medians), whether every container got exactly its annotated GPUs,
// and the plugin's kubelet call latency (GetPreferredAllocation, Allocate,
// PreStartContainer). The last line is the contract:
//
//	deviceplugin pods=100 mismatches=M create_to_running_p50_s=A baseline_p50_s=B allocate_p99_ms=L
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/gpufleet/gpufleet/internal/deviceplugintest"
)

func main() {
	pods := flag.Int("pods", 100, "pods per round")
	reps := flag.Int("reps", 3, "rounds of each kind (with devices, without)")
	flag.Parse()
	if err := run(*pods, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "bench-deviceplugin:", err)
		os.Exit(1)
	}
}

func run(pods, reps int) (err error) {
	if err := deviceplugintest.Unavailable(); err != nil {
		return fmt.Errorf("the real node cannot run here (make deps images, as root): %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	e, err := deviceplugintest.Start(ctx, "")
	defer func() {
		if serr := e.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	if err != nil {
		return err
	}
	fmt.Printf("real node with gpufleet applied and %d GPUs advertised by the agent: %.1f s\n", deviceplugintest.GPUs, time.Since(start).Seconds())
	shapes := deviceplugintest.MixedShapes(pods)
	var baseline []deviceplugintest.Shape
	for _, s := range shapes {
		baseline = append(baseline, deviceplugintest.NoDevice(s))
	}
	before, err := e.ScrapePlugin(ctx)
	if err != nil {
		return err
	}
	var devP50, baseP50 []float64
	mismatches := 0
	for r := range reps {
		// Alternate which kind goes first, so neither always meets a
		// machine still busy with the other's deletions.
		order := []bool{true, false}
		if r%2 == 1 {
			order = []bool{false, true}
		}
		for _, withDevices := range order {
			kind, batch := "baseline", baseline
			if withDevices {
				kind, batch = "devices", shapes
			}
			started, err := e.CreateAll(ctx, fmt.Sprintf("%s-%d", kind, r), batch, 5*time.Minute)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, kind, err)
			}
			var secs []float64
			for _, s := range started {
				secs = append(secs, s.CreateToRunning.Seconds())
				if withDevices {
					if err := e.Check(ctx, s.Pod); err != nil {
						mismatches++
						fmt.Println("MISMATCH:", err)
					}
				}
			}
			p50 := quantile(secs, 0.5)
			fmt.Printf("round %d %-8s pods=%d create_to_running p50=%.2f s p90=%.2f s max=%.2f s\n", r, kind, len(started), p50, quantile(secs, 0.9), quantile(secs, 1))
			if withDevices {
				devP50 = append(devP50, p50)
			} else {
				baseP50 = append(baseP50, p50)
			}
			if err := e.DeleteAll(ctx); err != nil {
				return err
			}
		}
	}
	after, err := e.ScrapePlugin(ctx)
	if err != nil {
		return err
	}
	pluginMismatches := after.Since(before, "gpufleet_deviceplugin_mismatches_total")
	fmt.Printf("plugin counters over the device rounds: mismatches %v, steering failures %v, unidentified admissions %v, ambiguous admissions %v, verified containers %v\n",
		pluginMismatches, after.Since(before, "gpufleet_deviceplugin_steering_failures_total"),
		after.Since(before, "gpufleet_deviceplugin_unidentified_admissions_total"), after.Since(before, "gpufleet_deviceplugin_ambiguous_admissions_total"),
		after.Since(before, "gpufleet_deviceplugin_verified_containers_total"))
	for _, method := range []string{"GetPreferredAllocation", "Allocate", "PreStartContainer", ""} {
		name := method
		if name == "" {
			name = "all calls"
		}
		fmt.Printf("plugin call latency over %d rounds (histogram, interpolated), %s: p50 %.2f ms, p99 %.2f ms\n", reps, name, after.CallQuantile(before, method, 0.5)*1000, after.CallQuantile(before, method, 0.99)*1000)
	}
	fmt.Printf("where the calls' time went (sums over the device rounds): kubelet pod-resources List %.2f s in %v calls, Get %.2f s in %v calls, waiting for the pod index %.2f s in %v waits\n",
		after.Since(before, "gpufleet_deviceplugin_podresources_list_duration_seconds_sum"), after.Since(before, "gpufleet_deviceplugin_podresources_list_duration_seconds_count"),
		after.Since(before, "gpufleet_deviceplugin_podresources_get_duration_seconds_sum"), after.Since(before, "gpufleet_deviceplugin_podresources_get_duration_seconds_count"),
		after.Since(before, "gpufleet_deviceplugin_pod_index_wait_seconds_sum"), after.Since(before, "gpufleet_deviceplugin_pod_index_wait_seconds_count"))
	a, b := quantile(devP50, 0.5), quantile(baseP50, 0.5)
	fmt.Printf("median of round p50s: with devices %.2f s, without %.2f s (ratio %.2f)\n", a, b, a/b)
	fmt.Printf("deviceplugin pods=%d mismatches=%d create_to_running_p50_s=%.2f baseline_p50_s=%.2f allocate_p99_ms=%.1f\n",
		pods, mismatches+int(pluginMismatches), a, b, after.CallQuantile(before, "", 0.99)*1000)
	return nil
}

// quantile is the q-quantile (nearest rank) of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(q*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}
