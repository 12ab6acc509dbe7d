package images

import (
	"fmt"
	"strconv"
	"strings"
)

// Docker base images of the Dockerfile path: distroless, the same Debian
// release as the engine-free build's libc6.
const (
	builderImage = "golang:1.26-bookworm"
	staticBase   = "gcr.io/distroless/static-debian12"
	libcBase     = "gcr.io/distroless/base-debian12"
)

// Dockerfile renders build/Dockerfile: one build stage per binary, built as
// the Makefile builds it, and one target per image with the user,
// entrypoint, ports and labels of its Spec.
func Dockerfile(specs []Spec) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# syntax=docker/dockerfile:1")
	w("# Generated from internal/images/spec.go by `make dockerfile`: edit that")
	w("# file, not this one. `make images` builds the same images without a")
	w("# container engine; a test keeps the two in agreement.")
	w("#")
	w("# One target per image:")
	for _, s := range specs {
		w("#   docker build -f build/Dockerfile --target %s -t gpufleet/%s:dev .", s.Binary, s.Binary)
		if s.CUDABase != "" {
			w("#   docker build -f build/Dockerfile --target %s-cpu -t gpufleet/%s:dev-cpu .", s.Binary, s.Binary)
		}
	}
	w("")
	w("FROM %s AS build", builderImage)
	w("WORKDIR /src")
	w("COPY go.mod go.sum ./")
	w("RUN --mount=type=cache,target=/go/pkg/mod go mod download")
	w("COPY apis/ apis/")
	w("COPY cmd/ cmd/")
	w("COPY internal/ internal/")
	w("COPY pkg/ pkg/")
	w("# go-nvml's cgo preamble calls functions NVML marks deprecated.")
	w(`ENV CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations"`)
	for _, s := range specs {
		w("")
		w("FROM build AS build-%s", s.Binary)
		cache := "RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \\"
		w("%s", cache)
		if s.CGO {
			w("    CGO_ENABLED=1 go build -trimpath -ldflags=-linkmode=internal -o /out/%s ./cmd/%s", s.Binary, s.Binary)
		} else {
			w("    CGO_ENABLED=0 go build -trimpath -o /out/%s ./cmd/%s", s.Binary, s.Binary)
		}
	}
	for _, s := range specs {
		if s.CUDABase != "" {
			stage(&b, s, s.Binary+"-cpu", runtimeBase(s), " (CPU)")
		}
	}
	for _, s := range specs {
		base := runtimeBase(s)
		if s.CUDABase != "" {
			base = s.CUDABase
		}
		stage(&b, s, s.Binary, base, "")
	}
	return b.String()
}

// runtimeBase is distroless base (glibc) for dynamically linked binaries,
// else distroless static; both in their nonroot variant where the spec
// runs as nonroot.
func runtimeBase(s Spec) string {
	base := staticBase
	if s.Libc {
		base = libcBase
	}
	if s.User == Nonroot {
		base += ":nonroot"
	}
	return base
}

func stage(b *strings.Builder, s Spec, target, base, titleSuffix string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	w("")
	w("FROM %s AS %s", base, target)
	w("ARG VERSION=dev")
	w("ARG REVISION=unknown")
	l := Labels(s, "${VERSION}", "${REVISION}")
	l["org.opencontainers.image.title"] += titleSuffix
	w("LABEL org.opencontainers.image.title=%s \\", strconv.Quote(l["org.opencontainers.image.title"]))
	w("      org.opencontainers.image.description=%s \\", strconv.Quote(l["org.opencontainers.image.description"]))
	w("      org.opencontainers.image.source=%s \\", strconv.Quote(l["org.opencontainers.image.source"]))
	w("      org.opencontainers.image.url=%s \\", strconv.Quote(l["org.opencontainers.image.url"]))
	w("      org.opencontainers.image.version=%s \\", strconv.Quote(l["org.opencontainers.image.version"]))
	w("      org.opencontainers.image.revision=%s", strconv.Quote(l["org.opencontainers.image.revision"]))
	w("COPY --from=build-%s /out/%s /%s", s.Binary, s.Binary, s.Binary)
	for _, d := range s.DirList() {
		w("COPY %s/ %s/", d[0], d[1])
	}
	for _, e := range s.EnvList() {
		k, v, _ := strings.Cut(e, "=")
		w("ENV %s=%s", k, strconv.Quote(v))
	}
	w("USER %s", s.User)
	for _, p := range s.Ports {
		w("EXPOSE %d", p)
	}
	w("ENTRYPOINT %s", jsonList(s.Entrypoint()))
	if len(s.Cmd) > 0 {
		w("CMD %s", jsonList(s.Cmd))
	}
}

func jsonList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
