# Build, run and test the load balancer. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BACKENDS ?= http://localhost:8081,http://localhost:8082
PORT     ?= 3030

FUZZTIME ?= 60s
# Each fuzz target and its package.
FUZZ_TARGETS := FuzzRequest:./proxy FuzzNewBackend:./proxy/pool FuzzParseFlags:./cmd/load-balancer FuzzParseSize:./cmd/load-balancer FuzzConfigFile:./cmd/load-balancer

SOAK ?= 10m

# `make bench` knobs: see the README's Performance section.
BENCH_DURATION ?= 2s
BENCH_WARMUP   ?= 1s
ROUNDS         ?= 3
SCENARIOS      ?= default
PEERS          ?= all
BENCH_BACKEND  ?= go
IDLE_CONNS     ?= 5000
BENCH_OUT      ?= bench/results
TOGETHER       ?= false
BENCHTIME      ?= 1s

.PHONY: help build run test vet fmt-check fuzz soak clean bench bench-go

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/load-balancer and bin/backend-server
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/load-balancer ./cmd/backend-server

run: build ## two backends (8081, 8082) and the balancer on 3030; Ctrl-C stops all three
	@trap 'kill $$b1 $$b2 2>/dev/null; wait' EXIT; \
	PORT=8081 ./bin/backend-server & b1=$$!; \
	PORT=8082 ./bin/backend-server & b2=$$!; \
	./bin/load-balancer -backends=$(BACKENDS) -port=$(PORT)

test: fmt-check vet ## gofmt, go vet and every test under the race detector
	$(GO) test -race -count=1 ./...

bench: build ## balancer vs nginx, HAProxy, net/http and direct (installs wrk, hey, nginx, haproxy as root)
	bench/setup.sh
	$(GO) build -trimpath -o bin/ ./bench/cmd/lbbench ./bench/cmd/httpproxy
	@pin=$$(command -v taskset >/dev/null && [ "$$(nproc --all)" -ge 2 ] && echo "taskset -c 0"); \
	$$pin ./bin/lbbench -duration=$(BENCH_DURATION) -warmup=$(BENCH_WARMUP) -rounds=$(ROUNDS) \
		-scenarios=$(SCENARIOS) -peers=$(PEERS) -backend=$(BENCH_BACKEND) -idle-conns=$(IDLE_CONNS) -out=$(BENCH_OUT) \
		-together=$(TOGETHER)

bench-go: ## Go micro-benchmarks (proxied request, backend selection) with -benchmem
	$(GO) test -run '^$$' -bench . -benchmem -benchtime=$(BENCHTIME) ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) $${t#*:}; \
	done

soak: ## mixed traffic for SOAK (10m) with backends killed at random; reports failures, memory, goroutines
	$(GO) test -tags soak -run '^TestSoak$$' -timeout 0 -v ./cmd/load-balancer -soak-duration=$(SOAK)

clean: ## remove built binaries
	rm -rf bin
