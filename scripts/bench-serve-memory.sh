#!/usr/bin/env bash
# Reproduces the serve memory figure of BENCHMARKS.md: peak RSS (VmHWM) of a real `archmirror
# serve` process while 16 concurrent clients list its full history (500 runs of ~100 KB) through
# GET /api/v1/runs. Needs no registry or BuildKit.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./bench/ -run '^$' -bench 'ServeListMemory' -benchtime "${BENCHTIME:-5x}" -count "${COUNT:-3}"
