// Command kubectl-gpufleet is the kubectl plugin `kubectl gpufleet`
// (pkg/kubectlgpufleet): put it on your PATH and run `kubectl gpufleet
// nodes`.
package main

import (
	"fmt"
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/gpufleet/gpufleet/pkg/kubectlgpufleet"
)

func main() {
	cmd := kubectlgpufleet.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr})
	if err := cmd.Execute(); err != nil {
		// As kubectl says it: one line, no stack, no usage.
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
