package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// flagOptions are a command's options: flags on a FlagSet, and a check
// that returns every error.
type flagOptions interface {
	AddFlags(fs *flag.FlagSet)
	Validate() error
}

// runCommand parses args into o, validates it and runs it until done or
// interrupted; it returns the exit code: 2 for bad flags, 1 when run fails.
// usage, when not nil, replaces the FlagSet's usage text.
func runCommand[O flagOptions](name string, o O, args []string, usage func(fs *flag.FlagSet), run func(context.Context, O, io.Writer) error, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if usage != nil {
		fs.Usage = func() { usage(fs) }
	}
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.Validate(); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
	return 0
}
