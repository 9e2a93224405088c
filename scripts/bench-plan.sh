#!/usr/bin/env bash
# Reproduces the plan figures of BENCHMARKS.md: 50 apps × 10 versions × 2 platforms, every
# image complete in a real docker-registry (started by the benchmark), upstream a local fake.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh registry
ARCHMIRROR_E2E=1 go test ./bench/ -run '^$' -bench 'Plan50x10x2' -benchtime "${BENCHTIME:-5x}" -count "${COUNT:-3}"
