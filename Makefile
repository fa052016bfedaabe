# Build, run and test the load balancer. `make help` lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BACKENDS ?= http://localhost:8081,http://localhost:8082
PORT     ?= 3030

FUZZTIME ?= 60s
# Each fuzz target and its package.
FUZZ_TARGETS := FuzzRequest:./proxy FuzzNewBackend:./proxy/pool FuzzParseFlags:./cmd/load-balancer FuzzParseSize:./cmd/load-balancer

SOAK ?= 10m

.PHONY: help build run test vet fmt-check fuzz soak clean

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
