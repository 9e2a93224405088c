# The two commands of the README:
#   make demo   sets up a local registry and a fixture upstream, and runs archmirror against them
#   make test   installs what the tests need (docker-registry, ...) and runs every test
GO ?= go
BIN := bin/archmirror
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build deps test-deps test test-short fuzz bench demo demo-stop clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/archmirror

deps:
	scripts/deps.sh registry buildkit

# The supply-chain tests also run the pinned cosign CLI (built once, cached); the status page
# test loads the page in headless Chromium; the examples test lints the GitHub Actions workflows
# with the pinned actionlint (built once, cached) and Debian's shellcheck.
test-deps: deps
	scripts/deps.sh cosign chromium actionlint

# Every test, with the real registry; a missing part fails instead of skipping.
test: test-deps
	ARCHMIRROR_E2E=1 $(GO) test -count=1 -timeout 60m ./...

# Quick iteration: whatever is installed is used, the rest is skipped.
test-short:
	$(GO) test ./...

# Each fuzz target of the module for a bounded time (CI runs them with FUZZTIME=10s).
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

bench: deps
	scripts/bench-plan.sh
	scripts/bench-sync.sh
	scripts/bench-attest.sh
	scripts/bench-serve.sh
	scripts/bench-serve-memory.sh
	scripts/bench-fanout.sh
	scripts/bench-faults.sh

demo: deps build
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

clean:
	rm -rf bin .run
