package sim

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadNodes(t *testing.T) {
	got, err := ReadNodes("nodes.csv", strings.NewReader("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,V100M16\ncpu0,32000,1024,0,\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{{Name: "n0", CPUMilli: 64000, MemoryMiB: 262144, GPUs: 8, Model: "V100M16"}, {Name: "cpu0", CPUMilli: 32000, MemoryMiB: 1024}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("nodes (-want +got):\n%s", diff)
	}
	// Our own format: any column order, a name column and a count.
	got, err = ReadNodes("mine.csv", strings.NewReader("model,gpu,name,count,memory_mib,cpu_milli\nT4,2,t4,3,65536,32000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Name != "t4-2" || got[0].Model != "T4" || got[1].GPUs != 2 {
		t.Errorf("count expansion: %+v", got)
	}
}

func TestReadNodesErrors(t *testing.T) {
	for _, tc := range []struct{ name, csv, want string }{
		{"missing column", "sn,cpu_milli,gpu,model\nn,1,1,T4\n", `no column "memory_mib"`},
		{"not a number", "sn,cpu_milli,memory_mib,gpu,model\nn,1,x,1,T4\n", `nodes.csv:2: column memory_mib: "x" is not a non-negative integer`},
		{"negative", "sn,cpu_milli,memory_mib,gpu,model\nn,-1,1,1,T4\n", `column cpu_milli: "-1"`},
		{"gpus without model", "sn,cpu_milli,memory_mib,gpu,model\nn,1,1,1,\n", "needs its GPU model"},
		{"duplicate", "sn,cpu_milli,memory_mib,gpu,model\nn,1,1,1,T4\nn,1,1,1,T4\n", `nodes.csv:3: column sn: node "n" already defined on line 2`},
		{"empty", "sn,cpu_milli,memory_mib,gpu,model\n", "no nodes"},
		{"no header", "", "reading the header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadNodes("nodes.csv", strings.NewReader(tc.csv))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

const podHeader = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"

func TestReadPods(t *testing.T) {
	got, err := ReadPods("pods.csv", strings.NewReader(podHeader+
		"p0,12000,16384,1,1000,,LS,Running,0,12537496,0\n"+
		"p1,6000,12288,1,460,V100M16|V100M32,LS,Running,427061,12902960,427061\n"+
		"p2,4000,100,0,0,,BE,Running,5,0,5\n"+
		"p3,8000,100,4,1000,,LS,Running,6,7,6\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Pod{
		{Name: "p0", CPUMilli: 12000, MemoryMiB: 16384, GPUs: 1, GPUMilli: 1000, DeletionTime: 12537496},
		{Name: "p1", CPUMilli: 6000, MemoryMiB: 12288, GPUs: 1, GPUMilli: 460, Models: []string{"V100M16", "V100M32"}, CreationTime: 427061, DeletionTime: 12902960},
		{Name: "p2", CPUMilli: 4000, MemoryMiB: 100, CreationTime: 5},
		{Name: "p3", CPUMilli: 8000, MemoryMiB: 100, GPUs: 4, GPUMilli: 1000, CreationTime: 6, DeletionTime: 7},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pods (-want +got):\n%s", diff)
	}
	if got[1].TotalGPUMilli() != 460 || got[3].TotalGPUMilli() != 4000 || got[2].TotalGPUMilli() != 0 {
		t.Errorf("GPU totals: %d %d %d", got[1].TotalGPUMilli(), got[3].TotalGPUMilli(), got[2].TotalGPUMilli())
	}
}

func TestReadPodsErrors(t *testing.T) {
	for _, tc := range []struct{ name, row, want string }{
		{"share of several GPUs", "p,1,1,2,500,,,,0,0,0", "takes whole GPUs"},
		{"one GPU, no share", "p,1,1,1,0,,,,0,0,0", "must use some of it"},
		{"bad spec", "p,1,1,1,500,V100M16||T4,,,0,0,0", "column gpu_spec"},
		{"deleted before created", "p,1,1,1,500,,,,10,5,0", "is before creation_time"},
		{"implausible GPUs", "p,1,1,5000,1000,,,,0,0,0", "not plausible"},
		{"empty name", ",1,1,1,500,,,,0,0,0", "pod name is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadPods("pods.csv", strings.NewReader(podHeader+tc.row+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pods.csv:2") {
				t.Errorf("err = %v, want pods.csv:2 and %q", err, tc.want)
			}
		})
	}
}

func FuzzReadPods(f *testing.F) {
	f.Add(podHeader + "p0,12000,16384,1,1000,,LS,Running,0,12537496,0\n")
	f.Add(podHeader + "p1,6000,12288,1,460,V100M16|V100M32,LS,Running,427061,12902960,427061\n")
	f.Add("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n\"a\"\"b\",1,2,3,4\n")
	f.Fuzz(func(t *testing.T, in string) {
		pods, err := ReadPods("fuzz.csv", strings.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range pods {
			if p.Name == "" || p.GPUs < 0 || p.CPUMilli < 0 || p.PerGPUMilli() < 0 || p.PerGPUMilli() > 1000 {
				t.Fatalf("accepted an invalid pod %+v", p)
			}
			if p.GPUs > 0 {
				if _, err := requestOfChecked(p); err != nil {
					t.Fatalf("accepted pod %+v that the plugin rejects: %v", p, err)
				}
			}
		}
	})
}

func FuzzReadNodes(f *testing.F) {
	f.Add("sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,8,V100M16\n")
	f.Add("model,gpu,name,count,memory_mib,cpu_milli\nT4,2,t4,3,65536,32000\n")
	f.Fuzz(func(t *testing.T, in string) {
		nodes, err := ReadNodes("fuzz.csv", strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, n := range nodes {
			if n.Name == "" || seen[n.Name] || n.GPUs < 0 || n.GPUs > 0 && n.Model == "" {
				t.Fatalf("accepted an invalid node %+v", n)
			}
			seen[n.Name] = true
		}
	})
}
