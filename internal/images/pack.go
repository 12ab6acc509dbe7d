package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PackOptions says where Pack finds its inputs and how it names and stamps
// the image.
type PackOptions struct {
	// BinDir holds the built binaries (bin/ of make build).
	BinDir string
	// RepoRoot is the repository root, for Spec.Dirs.
	RepoRoot string
	// LibcRoot is a Debian libc6 package unpacked (dpkg-deb -x): the
	// loader and libc of CGO images are taken from its lib/ and lib64/.
	LibcRoot string
	// LibcVersion is that package's version, recorded in a label.
	LibcVersion string
	// Repository prefixes the image name: Repository/Binary:Tag.
	Repository string
	Tag        string
	// Version and Revision fill the OCI version and revision labels.
	Version, Revision string
	// Epoch is every file's and the image's creation time (the commit
	// time for reproducible builds: SOURCE_DATE_EPOCH).
	Epoch time.Time
}

// Ref is the image reference Pack gives spec.
func (o PackOptions) Ref(s Spec) string {
	return o.Repository + "/" + s.Binary + ":" + o.Tag
}

// Image builds spec's image: a base layer (users, /tmp, and for CGO
// binaries Debian's loader and libc) and an application layer (the binary
// and Spec.Dirs). The same inputs give the same bytes.
func Image(s Spec, o PackOptions) (v1.Image, error) {
	base := newLayer(o.Epoch)
	base.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"))
	base.file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n"))
	base.dir("tmp", 0o1777)
	base.dir("home/nonroot", 0o700, 65532)
	if s.Libc {
		if o.LibcRoot == "" {
			return nil, fmt.Errorf("%s links glibc: its image needs Debian's libc6 unpacked (LibcRoot)", s.Binary)
		}
		for _, d := range []string{"lib", "lib64"} {
			if err := base.tree(filepath.Join(o.LibcRoot, d), d, func(rel string) bool {
				// The loader and the shared libraries; not gconv modules
				// or documentation.
				return strings.Contains(path.Base(rel), ".so")
			}); err != nil {
				return nil, fmt.Errorf("libc6 from %s: %w", o.LibcRoot, err)
			}
		}
	}
	app := newLayer(o.Epoch)
	bin, err := os.ReadFile(filepath.Join(o.BinDir, s.Binary))
	if err != nil {
		return nil, fmt.Errorf("%w (make build writes it)", err)
	}
	if interp := elfInterpreter(bin); interp != "" && !s.Libc {
		return nil, fmt.Errorf("%s is dynamically linked (interpreter %s) but its spec has no libc: it could not start in the image", s.Binary, interp)
	}
	app.file(s.Binary, 0o755, bin)
	for _, d := range s.DirList() {
		if err := app.tree(filepath.Join(o.RepoRoot, d[0]), strings.TrimPrefix(d[1], "/"), nil); err != nil {
			return nil, err
		}
	}

	var layers []v1.Layer
	for _, l := range []*layer{base, app} {
		tl, err := l.layer()
		if err != nil {
			return nil, err
		}
		layers = append(layers, tl)
	}
	img, err := mutate.Append(empty.Image,
		mutate.Addendum{Layer: layers[0], History: v1.History{Created: v1.Time{Time: o.Epoch}, CreatedBy: "gpufleet images: base", Comment: "users, /tmp" + map[bool]string{true: ", Debian libc6 " + o.LibcVersion}[s.Libc]}},
		mutate.Addendum{Layer: layers[1], History: v1.History{Created: v1.Time{Time: o.Epoch}, CreatedBy: "gpufleet images: " + s.Binary}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: o.Epoch}
	cf.Config = v1.Config{
		User:       s.User,
		Entrypoint: s.Entrypoint(),
		Cmd:        s.Cmd,
		Env:        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, s.EnvList()...),
		WorkingDir: "/",
		Labels:     Labels(s, o.Version, o.Revision),
	}
	if len(s.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range s.Ports {
			cf.Config.ExposedPorts[strconv.Itoa(p)+"/tcp"] = struct{}{}
		}
	}
	if s.Libc {
		cf.Config.Labels["io.gpufleet.debian.libc6"] = o.LibcVersion
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
}

// elfInterpreter returns the program interpreter an ELF executable asks
// for, "" for a static one or for anything that is not ELF.
func elfInterpreter(bin []byte) string {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return ""
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return "(unreadable)"
			}
			return strings.TrimRight(string(b), "\x00")
		}
	}
	return ""
}

// Labels are the OCI annotations of spec's image.
func Labels(s Spec, version, revision string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       s.Title,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.url":         Source + "/blob/main/" + s.Doc,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.revision":    revision,
	}
}

// Pack writes spec's image to path as a tarball that `ctr images import`
// and `docker load` read, named o.Ref(s).
func Pack(s Spec, o PackOptions, path string) error {
	img, err := Image(s, o)
	if err != nil {
		return fmt.Errorf("image %s: %w", s.Binary, err)
	}
	ref, err := name.NewTag(o.Ref(s))
	if err != nil {
		return fmt.Errorf("image %s: %w", s.Binary, err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("image %s: %w", s.Binary, err)
	}
	return os.Rename(tmp, path)
}

// layer is a filesystem layer built in memory with fixed owners and times.
type layer struct {
	epoch time.Time
	files map[string]*tar.Header
	data  map[string][]byte
}

func newLayer(epoch time.Time) *layer {
	return &layer{epoch: epoch, files: map[string]*tar.Header{}, data: map[string][]byte{}}
}

func (l *layer) parents(name string) {
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := l.files[d]; !ok {
			l.files[d] = &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: l.epoch}
		}
	}
}

func (l *layer) file(name string, mode int64, data []byte) {
	l.parents(name)
	l.files[name] = &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: l.epoch}
	l.data[name] = data
}

func (l *layer) dir(name string, mode int64, owner ...int) {
	l.parents(name)
	h := &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: l.epoch}
	if len(owner) > 0 {
		h.Uid, h.Gid = owner[0], owner[0]
	}
	l.files[name] = h
}

func (l *layer) symlink(name, target string) {
	l.parents(name)
	l.files[name] = &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: l.epoch}
}

// tree copies the files and symlinks under src to dst, those keep accepts
// (by path relative to src; nil keeps all). Modes keep their execute bits.
func (l *layer) tree(src, dst string, keep func(rel string) bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." || d.IsDir() {
			return err
		}
		rel = filepath.ToSlash(rel)
		if keep != nil && !keep(rel) {
			return nil
		}
		name := path.Join(dst, rel)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			l.symlink(name, target)
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file or symlink", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		mode := int64(0o644)
		if info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		l.file(name, mode, data)
		return nil
	})
}

// layer writes the tar, entries sorted by name, and wraps it.
func (l *layer) layer() (v1.Layer, error) {
	names := make([]string, 0, len(l.files))
	for n := range l.files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := *l.files[n]
		h.Format = tar.FormatPAX
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(l.data[n]); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
