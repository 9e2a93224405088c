#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each: FUZZTIME (default 30s).
# CI runs it with a short FUZZTIME so that the targets keep running; a crasher is written to
# the package's testdata/fuzz/<Target>/ and the script fails naming it.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded" at the
# end of a -fuzztime window, having found nothing (go.dev/issue/75804, fixed in Go 1.27). Such a
# run wrote no reproducer; it is run once more, and only a reproducer or another error fails.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
GO=${GO:-go}

# count DIR: the files in DIR (0 when it does not exist).
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

# fuzz PKG TARGET: 0 when the target ran clean, 1 on a finding, 2 on the coordinator's race.
fuzz() {
	local pkg=$1 target=$2 corpus before out
	corpus="$pkg/testdata/fuzz/$target"
	before=$(count "$corpus")
	out=$(mktemp)
	if $GO test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" 2>&1 | tee "$out"; then
		rm -f "$out"
		return 0
	fi
	if [ "$(count "$corpus")" -eq "$before" ] && grep -q '^    context deadline exceeded$' "$out" && ! grep -q 'Failing input written' "$out"; then
		rm -f "$out"
		return 2
	fi
	rm -f "$out"
	return 1
}

found=0
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
		found=$((found + 1))
		echo "fuzz: $pkg $target for $FUZZTIME"
		rc=0
		fuzz "$pkg" "$target" || rc=$?
		if [ "$rc" -eq 2 ]; then
			echo "fuzz: $target: Go's fuzz coordinator stopped with its deadline race (go.dev/issue/75804), no input found; once more"
			rc=0
			fuzz "$pkg" "$target" || rc=$?
			if [ "$rc" -eq 2 ]; then
				echo "fuzz: $target: the deadline race again, and again no input found: not a finding" >&2
				rc=0
			fi
		fi
		if [ "$rc" -ne 0 ]; then
			echo "fuzz: $target failed (see the reproducer under $pkg/testdata/fuzz/$target/)" >&2
			exit 1
		fi
	done
done < <(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(' --include='*_test.go' cmd internal | sort)

if [ "$found" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz: $found targets, $FUZZTIME each"
