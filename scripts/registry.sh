#!/usr/bin/env bash
# Starts (or stops) a local OCI registry (Debian's docker-registry, distribution 2.8) for the
# demo and for manual checks. Tests start their own on a free port (internal/testenv).
#   scripts/registry.sh start [ADDR]   # default 127.0.0.1:5055; state in .run/registry
#   scripts/registry.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
state=.run/registry
addr=${2:-127.0.0.1:5055}
case ${1:-start} in
start)
	mkdir -p "$state/data"
	if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
		echo "registry already running at $(cat "$state/addr")"
		exit 0
	fi
	cat >"$state/config.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $PWD/$state/data}, delete: {enabled: true}}
http: {addr: $addr}
YAML
	nohup docker-registry serve "$state/config.yml" >"$state/log" 2>&1 &
	echo $! >"$state/pid"
	echo "$addr" >"$state/addr"
	for _ in $(seq 50); do
		curl -fsS "http://$addr/v2/" >/dev/null 2>&1 && { echo "registry at $addr (log: $state/log)"; exit 0; }
		sleep 0.1
	done
	echo "registry did not start; see $state/log" >&2
	exit 1
	;;
stop)
	[ -f "$state/pid" ] && kill "$(cat "$state/pid")" 2>/dev/null || true
	rm -f "$state/pid"
	;;
*) echo "usage: $0 start [ADDR] | stop" >&2; exit 2 ;;
esac
