package gpupack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestRequestFromPod(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want Request
		// wantErr lists substrings the error must contain; nil: no error.
		wantErr []string
	}{
		{
			name: "CPU-only pod",
			pod:  gpuPod("p", 1500, 0, 0),
			want: Request{CPU: 1500},
		},
		{
			name: "whole GPUs",
			pod:  gpuPod("p", 4000, 2, 0),
			want: Request{GPUs: 2, CPU: 4000},
		},
		{
			name: "whole GPUs summed over containers",
			pod:  newPod("p", withContainer(res(1000, 1, 0)), withContainer(res(500, 2, 0))),
			want: Request{GPUs: 3, CPU: 1500},
		},
		{
			name: "share of one GPU",
			pod:  gpuPod("p", 250, 0, 470),
			want: Request{Milli: 470, CPU: 250},
		},
		{
			name: "share of exactly one GPU",
			pod:  gpuPod("p", 0, 0, 1000),
			want: Request{Milli: 1000},
		},
		{
			name: "init container larger than the app containers",
			pod:  newPod("p", withInit(res(3000, 3, 0), false), withContainer(res(1000, 1, 0)), withContainer(res(1000, 1, 0))),
			want: Request{GPUs: 3, CPU: 3000},
		},
		{
			name: "init container smaller than the app containers",
			pod:  newPod("p", withInit(res(100, 1, 0), false), withContainer(res(1000, 1, 0)), withContainer(res(1000, 1, 0))),
			want: Request{GPUs: 2, CPU: 2000},
		},
		{
			name: "init containers run one after another",
			pod:  newPod("p", withInit(res(0, 0, 600), false), withInit(res(0, 0, 700), false), withContainer(res(0, 0, 300))),
			want: Request{Milli: 700},
		},
		{
			name: "sidecar runs beside the app containers",
			pod:  newPod("p", withInit(res(200, 0, 200), true), withContainer(res(1000, 0, 300))),
			want: Request{Milli: 500, CPU: 1200},
		},
		{
			name: "pod overhead counts as CPU",
			pod: func() *corev1.Pod {
				p := gpuPod("p", 500, 1, 0)
				p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
				return p
			}(),
			want: Request{GPUs: 1, CPU: 600},
		},
		{
			name:    "whole GPUs and a share",
			pod:     gpuPod("p", 0, 1, 500),
			wantErr: []string{"nvidia.com/gpu (1)", "gpufleet.io/gpu-milli (500)", "not both"},
		},
		{
			name:    "whole GPUs and a share in different containers",
			pod:     newPod("p", withContainer(res(0, 2, 0)), withContainer(res(0, 0, 300))),
			wantErr: []string{"nvidia.com/gpu (2)", "gpufleet.io/gpu-milli (300)"},
		},
		{
			name:    "share above one GPU",
			pod:     gpuPod("p", 0, 0, 1001),
			wantErr: []string{"gpufleet.io/gpu-milli request 1001", "more than one GPU", "nvidia.com/gpu instead"},
		},
		{
			name:    "shares of two containers add up beyond one GPU",
			pod:     newPod("p", withContainer(res(0, 0, 600)), withContainer(res(0, 0, 600))),
			wantErr: []string{"gpufleet.io/gpu-milli request 1200"},
		},
		{
			name:    "implausible GPU count",
			pod:     gpuPod("p", 0, 1<<16+1, 0),
			wantErr: []string{"nvidia.com/gpu request 65537", "not a plausible GPU count"},
		},
		{
			name: "model list",
			pod:  gpuPod("p", 0, 1, 0, withModels("V100M16|V100M32")),
			want: Request{GPUs: 1, Models: []string{"V100M16", "V100M32"}},
		},
		{
			name: "model list with spaces and repeats",
			pod:  gpuPod("p", 0, 0, 500, withModels(" T4 | A100 |T4")),
			want: Request{Milli: 500, Models: []string{"T4", "A100"}},
		},
		{
			name:    "empty model list",
			pod:     gpuPod("p", 0, 1, 0, withModels("")),
			wantErr: []string{"gpufleet.io/gpu-model is empty"},
		},
		{
			name:    "empty model name",
			pod:     gpuPod("p", 0, 1, 0, withModels("V100M16||T4")),
			wantErr: []string{`"V100M16||T4"`, "empty model name"},
		},
		{
			name:    "model name with a bad character",
			pod:     gpuPod("p", 0, 1, 0, withModels("V100/M16")),
			wantErr: []string{`model name "V100/M16"`, `'/'`},
		},
		{
			name:    "model annotation on a pod without GPU",
			pod:     gpuPod("p", 1000, 0, 0, withModels("T4")),
			wantErr: []string{`gpufleet.io/gpu-model="T4"`, "requests no GPU"},
		},
		{
			name:    "malformed model annotation on a pod without GPU names the annotation",
			pod:     gpuPod("p", 1000, 0, 0, withModels("T4|")),
			wantErr: []string{"empty model name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RequestFromPod(tt.pod)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("RequestFromPod() = %+v, want an error containing %q", got, tt.wantErr)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("RequestFromPod() error %q does not contain %q", err, s)
					}
				}
				if diff := cmp.Diff(Request{}, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("RequestFromPod() returned a request with its error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("RequestFromPod() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("RequestFromPod() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestShape(t *testing.T) {
	tests := []struct {
		name       string
		r          Request
		count      int
		perGPU     int64
		totalMilli int64
		wantsGPU   bool
		str        string
	}{
		{name: "CPU only", r: cpuOnly(500), count: 0, perGPU: 0, totalMilli: 0, wantsGPU: false, str: "no GPU"},
		{name: "one GPU", r: wholeGPU(1), count: 1, perGPU: 1000, totalMilli: 1000, wantsGPU: true, str: "1 GPU"},
		{name: "four GPUs", r: wholeGPU(4), count: 4, perGPU: 1000, totalMilli: 4000, wantsGPU: true, str: "4 GPUs"},
		{name: "share", r: share(470), count: 1, perGPU: 470, totalMilli: 470, wantsGPU: true, str: "470 milli-GPU"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Count(); got != tt.count {
				t.Errorf("Count() = %d, want %d", got, tt.count)
			}
			if got := tt.r.PerGPU(); got != tt.perGPU {
				t.Errorf("PerGPU() = %d, want %d", got, tt.perGPU)
			}
			if got := tt.r.TotalMilli(); got != tt.totalMilli {
				t.Errorf("TotalMilli() = %d, want %d", got, tt.totalMilli)
			}
			if got := tt.r.WantsGPU(); got != tt.wantsGPU {
				t.Errorf("WantsGPU() = %t, want %t", got, tt.wantsGPU)
			}
			if got := tt.r.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestRequestAllowsModel(t *testing.T) {
	tests := []struct {
		name   string
		models []string
		model  string
		known  bool
		want   bool
	}{
		{name: "any model, known", model: "T4", known: true, want: true},
		{name: "any model, unknown", known: false, want: true},
		{name: "listed model", models: []string{"V100M16", "V100M32"}, model: "V100M32", known: true, want: true},
		{name: "unlisted model", models: []string{"V100M16", "V100M32"}, model: "T4", known: true, want: false},
		{name: "unknown model", models: []string{"V100M16"}, known: false, want: false},
		{name: "case matters", models: []string{"v100m16"}, model: "V100M16", known: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{GPUs: 1, Models: tt.models}
			if got := r.AllowsModel(tt.model, tt.known); got != tt.want {
				t.Errorf("AllowsModel(%q, %t) with models %v = %t, want %t", tt.model, tt.known, tt.models, got, tt.want)
			}
		})
	}
}
