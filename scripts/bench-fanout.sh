#!/usr/bin/env bash
# Reproduces the builders and fan-out figures of BENCHMARKS.md: the fixture mirrored with one
# BuildKit node or one per platform, and the registry traffic of recording jobs for a CI matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh registry buildkit
ARCHMIRROR_E2E=1 go test ./bench/ -run '^$' -bench 'Builders|RecordOverhead' -benchtime "${BENCHTIME:-2x}" -count "${COUNT:-3}"
