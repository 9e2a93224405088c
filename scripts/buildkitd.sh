#!/usr/bin/env bash
# Starts (or stops) a local buildkitd for the demo and for manual checks, allowed to push to
# the given plain-HTTP registries. Tests start their own (internal/testenv).
#   scripts/buildkitd.sh start [REGISTRY_HOST:PORT ...]   # socket: .run/buildkit/buildkitd.sock
#   scripts/buildkitd.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
state=$PWD/.run/buildkit
bin=${ARCHMIRROR_BUILDKITD:-$HOME/.cache/archmirror/bin/buildkitd}
case ${1:-start} in
start)
	shift || true
	mkdir -p "$state"
	if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
		echo "buildkitd already running at unix://$state/buildkitd.sock"
		exit 0
	fi
	{
		echo '[worker.oci]'
		echo '  enabled = true'
		echo '[worker.containerd]'
		echo '  enabled = false'
		for r in "$@"; do
			printf '[registry."%s"]\n  http = true\n' "$r"
		done
	} >"$state/buildkitd.toml"
	nohup "$bin" --addr "unix://$state/buildkitd.sock" --root /var/tmp/archmirror-demo-buildkit \
		--config "$state/buildkitd.toml" >"$state/log" 2>&1 &
	echo $! >"$state/pid"
	for _ in $(seq 100); do
		[ -S "$state/buildkitd.sock" ] && { echo "buildkitd at unix://$state/buildkitd.sock (log: $state/log)"; exit 0; }
		kill -0 "$(cat "$state/pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "buildkitd did not start; see $state/log" >&2
	tail -5 "$state/log" >&2
	exit 1
	;;
stop)
	if [ -f "$state/pid" ]; then
		kill "$(cat "$state/pid")" 2>/dev/null || true
		rm -f "$state/pid"
	fi
	;;
*) echo "usage: $0 start [REGISTRY ...] | stop" >&2; exit 2 ;;
esac
