#!/usr/bin/env bash
# Reproduces the fault figures of BENCHMARKS.md: the fixture mirrored through fault proxies in
# front of the registry and the upstream (5xx, 429, resets, stalls, truncated uploads at 10 %),
# ARCHMIRROR_FAULT_TRIALS (default 3) seeded trials per fault class (ARCHMIRROR_FAULT_CLASSES:
# a comma-separated subset of their keys), each recovered by fault-free syncs and checked for
# partial tags. Prints the table; the full log and the table stay in $ARCHMIRROR_ARTIFACTS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh registry buildkit
export ARCHMIRROR_ARTIFACTS=${ARCHMIRROR_ARTIFACTS:-$(mktemp -d /tmp/archmirror-faults-XXXXXX)}
mkdir -p "$ARCHMIRROR_ARTIFACTS"
rm -f "$ARCHMIRROR_ARTIFACTS/fault-figures.md"
status=0
ARCHMIRROR_E2E=1 ARCHMIRROR_FAULT_FIGURES=1 ARCHMIRROR_FAULT_TRIALS="${ARCHMIRROR_FAULT_TRIALS:-3}" \
	go test -count=1 -run TestFaultFigures -timeout 60m -v ./internal/run >"$ARCHMIRROR_ARTIFACTS/fault-figures.log" 2>&1 || status=$?
# One line per run, then every failure.
grep -E 'seed [0-9]+:|fault-free sync:|--- FAIL' "$ARCHMIRROR_ARTIFACTS/fault-figures.log" || true
echo
if [ -f "$ARCHMIRROR_ARTIFACTS/fault-figures.md" ]; then
	cat "$ARCHMIRROR_ARTIFACTS/fault-figures.md"
else
	tail -n 50 "$ARCHMIRROR_ARTIFACTS/fault-figures.log"
fi
echo
echo "log: $ARCHMIRROR_ARTIFACTS/fault-figures.log" >&2
exit "$status"
