#!/usr/bin/env bash
# Reproduces the attest figures of BENCHMARKS.md with the real parts: docker-registry (no
# referrers API) and go-containerregistry's registry (with it), each behind a byte-counting proxy,
# buildkitd with arm64 through qemu, and the fixture upstream.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh registry buildkit
ARCHMIRROR_E2E=1 go test ./bench/ -run '^$' -bench 'Attest' -benchtime "${BENCHTIME:-3x}" -count "${COUNT:-3}"
