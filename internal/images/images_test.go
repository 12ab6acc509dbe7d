package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const repoRoot = "../.."

// TestSpecsCoverEveryCommand: every directory of cmd/ but the client-only
// ones has exactly one image, so a new binary cannot ship without one.
func TestSpecsCoverEveryCommand(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(repoRoot, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds, specs []string
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(ClientOnly, e.Name()) {
			cmds = append(cmds, e.Name())
		}
	}
	for _, s := range Specs {
		specs = append(specs, s.Binary)
	}
	sort.Strings(specs)
	if !reflect.DeepEqual(cmds, specs) {
		t.Errorf("cmd/ has %v, Specs have %v", cmds, specs)
	}
}

// TestDockerfileIsRendered keeps the Docker path in agreement with the
// engine-free build: build/Dockerfile must be what `make dockerfile` renders.
func TestDockerfileIsRendered(t *testing.T) {
	got, err := os.ReadFile(filepath.Join(repoRoot, "build", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if want := Dockerfile(Specs); string(got) != want {
		t.Errorf("build/Dockerfile differs from internal/images/spec.go: run make dockerfile")
	}
	// And the render says what each spec says.
	for _, s := range Specs {
		for _, line := range []string{
			"FROM build AS build-" + s.Binary + "\n",
			"COPY --from=build-" + s.Binary + " /out/" + s.Binary + " /" + s.Binary + "\n",
			"USER " + s.User + "\n",
			"ENTRYPOINT [\"/" + s.Binary + "\"]\n",
		} {
			if !bytes.Contains(got, []byte(line)) {
				t.Errorf("build/Dockerfile lacks %q for %s", line, s.Binary)
			}
		}
	}
}

func fakeInputs(t *testing.T) PackOptions {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	libc := filepath.Join(dir, "libc6")
	for _, p := range []string{bin, filepath.Join(libc, "lib", "x86_64-linux-gnu"), filepath.Join(libc, "lib64"), filepath.Join(libc, "usr", "share", "doc")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range Specs {
		if err := os.WriteFile(filepath.Join(bin, s.Binary), []byte("#!binary "+s.Binary), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(libc, "lib", "x86_64-linux-gnu", "libc.so.6"), []byte("libc"), 0o644))
	must(os.WriteFile(filepath.Join(libc, "lib", "x86_64-linux-gnu", "ld-linux-x86-64.so.2"), []byte("ld"), 0o755))
	must(os.Symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", filepath.Join(libc, "lib64", "ld-linux-x86-64.so.2")))
	must(os.WriteFile(filepath.Join(libc, "usr", "share", "doc", "copyright"), []byte("doc"), 0o644))
	return PackOptions{
		BinDir: bin, RepoRoot: repoRoot, LibcRoot: libc, LibcVersion: "2.36-9+deb12u13",
		Repository: "gpufleet", Tag: "dev", Version: "v0.1.0-test", Revision: "abc",
		Epoch: time.Unix(1700000000, 0).UTC(),
	}
}

// TestPackIsReproducible: two packs of the same inputs give the same bytes,
// whatever the files' times on disk.
func TestPackIsReproducible(t *testing.T) {
	o := fakeInputs(t)
	dir := t.TempDir()
	for _, s := range Specs {
		a, b := filepath.Join(dir, s.Binary+".a.tar"), filepath.Join(dir, s.Binary+".b.tar")
		if err := Pack(s, o, a); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := os.Chtimes(filepath.Join(o.BinDir, s.Binary), now, now); err != nil {
			t.Fatal(err)
		}
		if err := Pack(s, o, b); err != nil {
			t.Fatal(err)
		}
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		if !bytes.Equal(ab, bb) {
			t.Errorf("%s: two packs differ", s.Binary)
		}
	}
}

// TestImageConfigAndFiles reads a packed tarball back as a runtime would:
// user, entrypoint, labels, and the files each image must hold.
func TestImageConfigAndFiles(t *testing.T) {
	o := fakeInputs(t)
	dir := t.TempDir()
	for _, s := range Specs {
		path := filepath.Join(dir, s.Binary+".tar")
		if err := Pack(s, o, path); err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if c.User != s.User || !reflect.DeepEqual(c.Entrypoint, []string{"/" + s.Binary}) || !reflect.DeepEqual(c.Cmd, s.Cmd) {
			t.Errorf("%s: user %q entrypoint %q cmd %q, want %q %q %q", s.Binary, c.User, c.Entrypoint, c.Cmd, s.User, "/"+s.Binary, s.Cmd)
		}
		if c.Labels["org.opencontainers.image.revision"] != "abc" || c.Labels["org.opencontainers.image.title"] != s.Title {
			t.Errorf("%s: labels %v", s.Binary, c.Labels)
		}
		if !cf.Created.Time.Equal(o.Epoch) {
			t.Errorf("%s: created %v, want %v", s.Binary, cf.Created.Time, o.Epoch)
		}
		files := imageFiles(t, img)
		bin, ok := files[s.Binary]
		if !ok || bin.Mode&0o111 == 0 || bin.Uid != 0 {
			t.Errorf("%s: /%s missing or not executable by its owner root: %+v", s.Binary, s.Binary, bin)
		}
		for _, f := range files {
			if !f.ModTime.Equal(o.Epoch) {
				t.Errorf("%s: %s has time %v", s.Binary, f.Name, f.ModTime)
				break
			}
		}
		if _, ok := files["etc/passwd"]; !ok {
			t.Errorf("%s: no /etc/passwd", s.Binary)
		}
		_, hasLoader := files["lib64/ld-linux-x86-64.so.2"]
		_, hasLibc := files["lib/x86_64-linux-gnu/libc.so.6"]
		if hasLoader != s.Libc || hasLibc != s.Libc {
			t.Errorf("%s: libc %v but loader %v libc %v", s.Binary, s.Libc, hasLoader, hasLibc)
		}
		if _, ok := files["usr/share/doc/copyright"]; ok {
			t.Errorf("%s: carries libc6's documentation", s.Binary)
		}
		for _, d := range s.DirList() {
			if _, ok := files[d[1][1:]+"/property-value/config.yaml"]; d[0] == "models" && !ok {
				t.Errorf("%s: models not copied to %s", s.Binary, d[1])
			}
		}
	}
}

func TestPackErrors(t *testing.T) {
	o := fakeInputs(t)
	agent, _ := Lookup("gpu-agent")
	noLibc := o
	noLibc.LibcRoot = ""
	if err := Pack(agent, noLibc, filepath.Join(t.TempDir(), "a.tar")); err == nil {
		t.Error("gpu-agent packed without libc6")
	}
	// A dynamically linked binary in an image without a loader could
	// never start ("exec: no such file or directory"): refused.
	if data, err := os.ReadFile("/bin/true"); err == nil && elfInterpreter(data) != "" {
		static, _ := Lookup("metrics-adapter")
		if err := os.WriteFile(filepath.Join(o.BinDir, static.Binary), data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := Pack(static, o, filepath.Join(t.TempDir(), "m.tar")); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
			t.Errorf("dynamic binary without libc: %v", err)
		}
	}
	noBin := o
	noBin.BinDir = t.TempDir()
	err := Pack(agent, noBin, filepath.Join(t.TempDir(), "a.tar"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing binary: %v", err)
	}
}

// imageFiles flattens the image's layers: path (no leading /) to header.
func imageFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}
