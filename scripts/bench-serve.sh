#!/usr/bin/env bash
# Reproduces the serve load figures of BENCHMARKS.md: 16 loopback clients on GET /api/v1/apps and
# /metrics of an in-process `serve` while it mirrors a new version with the real registry and
# BuildKit (arm64 through qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh registry buildkit
ARCHMIRROR_E2E=1 go test ./bench/ -run '^$' -bench 'ServeLoad' -benchtime "${BENCHTIME:-3x}" -count "${COUNT:-3}"
