#!/usr/bin/env bash
# make demo: a local registry (Debian's docker-registry) and the fixture upstream on loopback,
# then a real `archmirror plan` against them. `scripts/demo.sh stop` stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
REG_ADDR=${DEMO_REGISTRY:-127.0.0.1:5055}
UP_ADDR=${DEMO_UPSTREAM:-127.0.0.1:8077}
state=.run/demo
mkdir -p "$state"

if [ "${1:-}" = stop ]; then
	[ -f "$state/upstream.pid" ] && kill "$(cat "$state/upstream.pid")" 2>/dev/null || true
	rm -f "$state/upstream.pid"
	scripts/registry.sh stop
	exit 0
fi

scripts/registry.sh start "$REG_ADDR"

go build -o bin/fixture-upstream ./internal/fixture/cmd/upstream
if [ -f "$state/upstream.pid" ] && kill -0 "$(cat "$state/upstream.pid")" 2>/dev/null; then
	kill "$(cat "$state/upstream.pid")"
	sleep 0.2
fi
seed=()
[ -f "$state/seeded" ] || seed=(-seed)
nohup bin/fixture-upstream -listen "$UP_ADDR" -registry "$REG_ADDR/demo" \
	-config "$state/mirror.yaml" -cache-dir "$PWD/$state/cache" "${seed[@]}" >"$state/upstream.log" 2>&1 &
echo $! >"$state/upstream.pid"
for _ in $(seq 100); do
	grep -q "fixture upstream at" "$state/upstream.log" 2>/dev/null && break
	kill -0 "$(cat "$state/upstream.pid")" 2>/dev/null || { cat "$state/upstream.log" >&2; exit 1; }
	sleep 0.1
done
touch "$state/seeded"

echo
echo "== archmirror plan -c $state/mirror.yaml"
set +e
bin/archmirror plan -c "$state/mirror.yaml"
code=$?
set -e
cat <<MSG

The demo is running: registry at http://$REG_ADDR, fixture upstream at http://$UP_ADDR.
Look at it:
  bin/archmirror plan -c $state/mirror.yaml --json
  bin/archmirror plan -c $state/mirror.yaml --format github-matrix
  curl -s http://$REG_ADDR/v2/_catalog
  curl -s http://$REG_ADDR/v2/demo/hello/tags/list
  curl -s http://$UP_ADDR/repos/acme/hello/releases | head -40
Stop it with: make demo-stop
MSG
exit $code
