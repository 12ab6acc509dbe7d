# gpufleet Makefile. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
BIN     := $(CURDIR)/bin
OUTPUT  := $(CURDIR)/_output
LOCAL   := $(OUTPUT)/local
# Whole-suite bound: the integration tests start real control planes.
TEST_TIMEOUT ?= 30m
GOTEST_FLAGS ?=
# Extra `gpufleet demo` flags for make demo (gpufleet demo --help).
DEMO_FLAGS ?=

# Binaries of this project: every directory under cmd/.
COMMANDS := $(notdir $(wildcard cmd/*))
# Control-plane binaries, from the tool lines in go.mod.
CONTROL_PLANE := etcd kube-apiserver kube-controller-manager kubectl
# The local real node's binaries (pkg/localcluster RealNode), and the stock
# kube-scheduler that schedules its system pods; same tool lines.
NODE_TOOLS := kubelet kube-proxy kube-scheduler containerd containerd-shim-runc-v2 ctr
# helm, for `helm install` of charts/gpufleet on the real node (its own module).
CHART_TOOLS := helm

# gpu-agent needs cgo (go-nvml). It links internally: go-nvml's cgo only
# dlopens, and the external linker's layout makes the kernel map about 60 %
# more of the binary (RSS 42 MiB instead of 27 MiB, make bench-agent).
AGENT_LDFLAGS ?= -linkmode=internal
# Every other binary builds without cgo: the inference server loads CUDA at
# run time through purego, which needs no C toolchain.
NOCGO_COMMANDS := $(filter-out gpu-agent,$(COMMANDS))

export GPUFLEET_BIN_DIR := $(BIN)
# go-nvml's cgo preamble calls functions NVML marks deprecated; the
# warnings are noise, not ours to fix.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every gpufleet binary into bin/.
	@mkdir -p $(BIN)
	$(GO) build -ldflags='$(AGENT_LDFLAGS)' -o $(BIN)/ ./cmd/gpu-agent
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(NOCGO_COMMANDS))

.PHONY: tools
tools: $(addprefix $(BIN)/,$(CONTROL_PLANE) $(NODE_TOOLS) $(CHART_TOOLS)) ## Build etcd, kube-apiserver, kube-controller-manager, kubectl, kubelet, kube-proxy, kube-scheduler, containerd (with its shim and ctr) and helm into bin/.

# Rebuilt when go.mod or go.sum move their versions.
$(BIN)/etcd: go.mod go.sum
	$(GO) build -o $@ go.etcd.io/etcd/server/v3
$(BIN)/kube-apiserver: go.mod go.sum
	$(GO) build -o $@ k8s.io/kubernetes/cmd/kube-apiserver
$(BIN)/kube-controller-manager: go.mod go.sum
	$(GO) build -o $@ k8s.io/kubernetes/cmd/kube-controller-manager
$(BIN)/kubectl: go.mod go.sum
	$(GO) build -o $@ k8s.io/kubernetes/cmd/kubectl
$(BIN)/kubelet: go.mod go.sum
	$(GO) build -o $@ k8s.io/kubernetes/cmd/kubelet
$(BIN)/kube-proxy: go.mod go.sum
	$(GO) build -o $@ k8s.io/kubernetes/cmd/kube-proxy
$(BIN)/kube-scheduler: go.mod go.sum
	$(GO) build -o $@ k8s.io/kubernetes/cmd/kube-scheduler
# containerd 2 from its own module (hack/containerd): its dependencies never
# move the versions the main module shares with Kubernetes.
$(BIN)/containerd: hack/containerd/go.mod hack/containerd/go.sum
	cd hack/containerd && $(GO) build -o $@ github.com/containerd/containerd/v2/cmd/containerd
$(BIN)/containerd-shim-runc-v2: hack/containerd/go.mod hack/containerd/go.sum
	cd hack/containerd && $(GO) build -o $@ github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2
$(BIN)/ctr: hack/containerd/go.mod hack/containerd/go.sum
	cd hack/containerd && $(GO) build -o $@ github.com/containerd/containerd/v2/cmd/ctr
$(BIN)/helm: hack/helm/go.mod hack/helm/go.sum
	cd hack/helm && $(GO) build -o $@ helm.sh/helm/v4/cmd/helm
$(BIN)/staticcheck: hack/tools/go.mod hack/tools/go.sum
	cd hack/tools && $(GO) build -o $@ honnef.co/go/tools/cmd/staticcheck

# Debian packages the tests use: Prometheus, for the metrics adapter's
# Prometheus source (a real server scraping real processes); runc, the CNI
# plugins, iptables and conntrack for the local real node (pkg/localcluster
# RealNode; containerd itself is built from hack/containerd).
DEBIAN_PACKAGES := prometheus runc containernetworking-plugins iptables conntrack chromium

.PHONY: deps
deps: ## Install the Debian packages the tests need (prometheus, the real node's runc and CNI plugins, chromium for the pages) when missing; needs root.
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (apt-get install$$missing)" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; }; \
	fi

# Images: one OCI tarball per binary in _output/images/, packed from bin/
# without a container engine (internal/images is the build definition).
# The gpu-agent's loader and libc come from Debian's libc6 package, the
# version installed here (the one the binary was linked against).
IMAGES      := $(OUTPUT)/images
IMAGE_TAG   ?= dev
LIBC6_VERSION = $(shell dpkg-query -W -f='$${Version}' libc6)
LIBC6_ROOT  := $(OUTPUT)/debs/libc6
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

$(LIBC6_ROOT)/.version:
	@mkdir -p $(OUTPUT)/debs
	cd $(OUTPUT)/debs && { apt-get download -q libc6=$(LIBC6_VERSION) >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get download -q libc6=$(LIBC6_VERSION); }; }
	rm -rf $(LIBC6_ROOT) && dpkg-deb -x $(OUTPUT)/debs/libc6_*.deb $(LIBC6_ROOT)
	echo $(LIBC6_VERSION) > $@

$(BIN)/pause: hack/pause/main.go
	CGO_ENABLED=0 $(GO) build -o $@ ./hack/pause

.PHONY: images
images: build $(BIN)/pause $(LIBC6_ROOT)/.version ## One OCI image per binary in _output/images/<binary>.tar (ctr images import), reproducible; plus the local node's pause image.
	$(GO) run ./hack/images -bin $(BIN) -out $(IMAGES) -tag $(IMAGE_TAG) -pause $(BIN)/pause \
		-libc $(LIBC6_ROOT) -libc-version "$$(cat $(LIBC6_ROOT)/.version)" \
		-version "$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -revision "$$(git rev-parse HEAD 2>/dev/null || echo unknown)"

.PHONY: dockerfile
dockerfile: ## Render build/Dockerfile from internal/images (the Docker path of make images).
	$(GO) run ./hack/images -dockerfile build/Dockerfile

.PHONY: test
test: deps tools build images ## Every unit and integration test (what CI runs); real-node tests fail, not skip, where the machine cannot run one.
	GPUFLEET_REQUIRE_REAL_NODE=1 $(GO) test -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./...

.PHONY: test-unit
test-unit: ## Unit tests only: no control plane is started.
	$(GO) test -short $(GOTEST_FLAGS) ./...

.PHONY: test-race
test-race: deps tools build ## Every test under the race detector (slower; not part of make test).
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(GOTEST_FLAGS) ./...

.PHONY: test-stress
test-stress: deps tools build images ## Rerun tests many times under CPU pressure to find timing flakes (STRESS_RUNS, STRESS_PKGS, STRESS_RUN, STRESS_SHORT=false for integration tests); not part of make test.
	$(GO) run ./hack/test-stress --runs $${STRESS_RUNS:-10} --short=$${STRESS_SHORT:-true} --run "$${STRESS_RUN:-}" $${STRESS_PKGS:-./...}

.PHONY: test-integration
test-integration: deps tools build images ## Integration tests only (TestIntegration*), against real control planes and the real node.
	$(GO) test -timeout $(TEST_TIMEOUT) -run Integration $(GOTEST_FLAGS) ./...

.PHONY: e2e
e2e: deps tools build images ## End-to-end tests (test/e2e): load, HPA up and down, on the real node (gpufleet's images) and on simulated V100/T4 nodes; ends with one summary line, the real node's where it ran.
	@rm -rf $(OUTPUT)/e2e && mkdir -p $(OUTPUT)/e2e
	GPUFLEET_E2E_SUMMARY=$(OUTPUT)/e2e $(GO) test -count=1 -timeout 15m -v -run E2E $(GOTEST_FLAGS) ./test/e2e/
	@if [ -f $(OUTPUT)/e2e/real ]; then cat $(OUTPUT)/e2e/real; else cat $(OUTPUT)/e2e/simulated; fi

.PHONY: chaos
chaos: deps tools build images ## Faults under steady load on the real node (test/e2e TestIntegrationE2EChaos): kill -9 an adapter replica, the scheduler leader, the gpu-agent; crash-restart kube-apiserver and etcd; ends with one summary line.
	@rm -rf $(OUTPUT)/chaos && mkdir -p $(OUTPUT)/chaos
	GPUFLEET_CHAOS_SUMMARY=$(OUTPUT)/chaos GPUFLEET_REQUIRE_REAL_NODE=1 $(GO) test -count=1 -timeout 20m -v -run 'TestIntegrationE2EChaos$$' $(GOTEST_FLAGS) ./test/e2e/
	@cat $(OUTPUT)/chaos/chaos

.PHONY: bench-controlplane
bench-controlplane: tools ## Control-plane start and stop time: median and max of 5 starts.
	$(GO) test -run '^$$' -bench BenchmarkControlPlaneStart -benchtime 5x ./pkg/localcluster/

.PHONY: bench-agent
bench-agent: build ## gpu-agent on the simulated 8-GPU node, 1 s sampling, scraped 10/s for 60 s: RSS, CPU, scrape latency.
	$(GO) run ./hack/bench-agent --agent $(BIN)/gpu-agent --duration $${BENCH_DURATION:-60s}

.PHONY: bench-inference
bench-inference: build ## inference-server, CPU backend, saturating load: batching vs batch size 1, protocol overhead vs a bare handler.
	$(GO) run ./hack/bench-inference --server $(BIN)/inference-server --duration $${BENCH_DURATION:-10s}

.PHONY: bench-router
bench-router: build ## model-router on loopback, 3 inference servers, one slowed: p99 with least-request vs round-robin at the same load, and the router's added p50 vs a pod directly (medians of BENCH_REPS).
	$(GO) run ./hack/bench-router --server $(BIN)/inference-server --router $(BIN)/model-router --duration $${BENCH_DURATION:-5s} --reps $${BENCH_REPS:-5}

.PHONY: bench-scheduler
bench-scheduler: tools ## Scheduling throughput on a real control plane, gpufleet profile vs NodeResourcesFit MostAllocated (1000 nodes x 8 GPUs, 10000 pods).
	$(GO) run ./hack/bench-scheduler --nodes $${BENCH_NODES:-1000} --pods $${BENCH_PODS:-10000} --reps $${BENCH_REPS:-3}

.PHONY: bench-adapter
bench-adapter: deps tools build ## metrics-adapter via kube-apiserver: freshness after load steps (embedded vs Prometheus 15 s/rate[1m], 10 steps each), GetMetricBySelector over 1000 of 10000 pods, RSS.
	$(GO) run ./hack/bench-adapter --adapter $(BIN)/metrics-adapter --steps $${BENCH_STEPS:-10} --prometheus-steps $${BENCH_PROM_STEPS:-10} --pods $${BENCH_PODS:-10000}

.PHONY: bench-deviceplugin
bench-deviceplugin: deps images ## gpu-agent's device plugin on the real node (root): 100 mixed GPU pods at once vs the same pods without devices, 3 rounds each; mismatches, create-to-Running p50, plugin call p99.
	$(GO) run ./hack/bench-deviceplugin --pods $${BENCH_PODS:-100} --reps $${BENCH_REPS:-3}

.PHONY: bench-sim
bench-sim: build ## gpusim on the default openb trace, seed 42: bestfit, fgd and gpufleet allocation at 130 % arrived, and gpufleet's run time.
	$(GO) run ./hack/bench-sim --gpusim $(BIN)/gpusim

.PHONY: bench-autoscale
bench-autoscale: build ## gpusim autoscale study (TRACE=FILE, default the 14-day serving-qps trace): Prometheus-adapter vs gpufleet reactive vs reactive+forecast, under-provisioned replica-seconds at equal GPU-hours on the evaluation part.
	$(GO) run ./hack/bench-autoscale --gpusim $(BIN)/gpusim --trace $(or $(TRACE),../shared/traces/serving-qps/servegen_m_mid_14d.csv) --fill $${FILL:-linear}

.PHONY: sim-paper
sim-paper: ## gpusim vs the FGD paper: mean over seeds 42..51 on the five openb pod lists (long: about 25 min on 2 cores).
	$(GO) run ./hack/sim-paper --pods $${SIM_PODS:-default,cpu050,gpushare40,gpuspec10,multigpu20} --policies $${SIM_POLICIES:-bestfit,fgd,gpufleet}

.PHONY: check-pages
check-pages: deps ## Open the demo's report.html and the cost report in headless Chromium: plots and tables laid out, no console errors, no external requests; screenshots in _output/pages/.
	GPUFLEET_REQUIRE_BROWSER=1 GPUFLEET_PAGES_DIR=$(OUTPUT)/pages $(GO) test -count=1 -run '^TestPagesInBrowser$$' -v ./internal/demo/

.PHONY: test-gpu
test-gpu: ## Tests that need a GPU and the CUDA libraries (make test-gpu on a GPU machine with Go; not part of make test).
	$(GO) test -tags gpu -count=1 -v ./pkg/inference/backend/cuda/ ./pkg/nvml/ ./pkg/deviceplugin/

.PHONY: gpu-check
gpu-check: ## Build _output/gpu-check/gpu-check.tar.gz for hack/gpu-check run on a GPU machine without Go (docs/gpu-check.md).
	hack/gpu-check build

.PHONY: gpu-check-dry-run
gpu-check-dry-run: ## Build the GPU check, check it is complete, and check that it fails clearly without a GPU.
	hack/gpu-check dry-run

.PHONY: verify
verify: $(BIN)/staticcheck ## gofmt, go vet, go mod tidy leaves no diff, staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags gpu ./pkg/inference/backend/cuda/ ./pkg/nvml/ ./pkg/deviceplugin/
	$(GO) mod tidy -diff
	cd hack/tools && $(GO) mod tidy -diff
	cd hack/containerd && $(GO) mod tidy -diff
	cd hack/helm && $(GO) mod tidy -diff
	$(BIN)/staticcheck ./...

.PHONY: cluster-up
cluster-up: build tools ## Start a local control plane with simulated GPU nodes; kubeconfig in _output/local/kubeconfig.
	$(BIN)/gpufleet cluster up --dir $(LOCAL)

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and every process it started.
	@if [ -x $(BIN)/gpufleet ]; then $(BIN)/gpufleet cluster down --dir $(LOCAL); else echo "no bin/gpufleet: nothing was started"; fi

.PHONY: demo
demo: tools build ## The whole system under the genai-qps trace replayed in 3 min, on the real node where this machine can run one (else simulated nodes, saying why); report, plots and GPU cost in _output/demo/ (DEMO_FLAGS, e.g. --duration 90s, --node simulated).
	@$(MAKE) --no-print-directory images >/dev/null || echo "make images failed: the demo cannot use the real node"
	$(BIN)/gpufleet demo --out $(OUTPUT)/demo $(DEMO_FLAGS)

.PHONY: clean
clean: cluster-down ## Remove bin/ and _output/.
	rm -rf $(BIN) $(OUTPUT)
