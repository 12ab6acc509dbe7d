// Command images builds gpufleet's container images without a container
// engine (make images), or renders build/Dockerfile (make dockerfile), both
// from the build definition in internal/images.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gpufleet/gpufleet/internal/images"
)

func main() {
	var (
		o          images.PackOptions
		out        = flag.String("out", "_output/images", "directory for the image tarballs (<binary>.tar)")
		dockerfile = flag.String("dockerfile", "", "render the Dockerfile to this path instead of building images")
		pause      = flag.String("pause", "", "also pack this pause binary as the local node's sandbox image (pause.tar)")
		epoch      = flag.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "file and image time, seconds since 1970 (SOURCE_DATE_EPOCH)")
	)
	flag.StringVar(&o.BinDir, "bin", "bin", "directory of the built binaries")
	flag.StringVar(&o.RepoRoot, "root", ".", "repository root")
	flag.StringVar(&o.LibcRoot, "libc", "", "Debian libc6 package unpacked with dpkg-deb -x (for gpu-agent)")
	flag.StringVar(&o.LibcVersion, "libc-version", "", "that package's version")
	flag.StringVar(&o.Repository, "repository", "gpufleet", "image name prefix")
	flag.StringVar(&o.Tag, "tag", "dev", "image tag")
	flag.StringVar(&o.Version, "version", "dev", "org.opencontainers.image.version")
	flag.StringVar(&o.Revision, "revision", "unknown", "org.opencontainers.image.revision")
	flag.Parse()

	if *dockerfile != "" {
		if err := os.WriteFile(*dockerfile, []byte(images.Dockerfile(images.Specs)), 0o644); err != nil {
			fail(err)
		}
		return
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if *epoch == "" {
		secs, err = 0, nil
	}
	if err != nil {
		fail(fmt.Errorf("-epoch %q: want seconds since 1970: %w", *epoch, err))
	}
	o.Epoch = time.Unix(secs, 0).UTC()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	for _, s := range images.Specs {
		if err := pack(s, o, *out); err != nil {
			fail(err)
		}
	}
	if *pause != "" {
		po := o
		po.BinDir, po.Tag = filepath.Dir(*pause), images.PauseTag
		if err := pack(images.Pause, po, *out); err != nil {
			fail(err)
		}
	}
}

func pack(s images.Spec, o images.PackOptions, out string) error {
	path := filepath.Join(out, s.Binary+".tar")
	if err := images.Pack(s, o, path); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("%-20s %-40s %6.1f MiB\n", filepath.Base(path), o.Ref(s), float64(st.Size())/(1<<20))
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "images:", err)
	os.Exit(1)
}
