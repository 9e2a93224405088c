#!/usr/bin/env bash
# make demo: a local registry (Debian's docker-registry), buildkitd (arm64 through qemu) and the
# fixture upstream on loopback, then a real `archmirror sync` into the registry, a second sync
# that has nothing to do, and how to look at the result. `scripts/demo.sh stop` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
REG=${DEMO_REGISTRY:-127.0.0.1:5055}
UP=${DEMO_UPSTREAM:-127.0.0.1:8077}
state=.run/demo

if [ "${1:-}" = stop ]; then
	[ -f "$state/upstream.pid" ] && kill "$(cat "$state/upstream.pid")" 2>/dev/null || true
	rm -f "$state/upstream.pid"
	scripts/buildkitd.sh stop
	scripts/registry.sh stop
	exit 0
fi

mkdir -p "$state"
scripts/registry.sh start "$REG"
scripts/buildkitd.sh start "$REG"
builder=unix://$PWD/.run/buildkit/buildkitd.sock

go build -o bin/fixture-upstream ./internal/fixture/cmd/upstream
if [ -f "$state/upstream.pid" ] && kill -0 "$(cat "$state/upstream.pid")" 2>/dev/null; then
	kill "$(cat "$state/upstream.pid")"
	sleep 0.2
fi
rm -f "$state/upstream.log"
nohup bin/fixture-upstream -listen "$UP" -registry "$REG" -dir "$state" -builder "$builder" >"$state/upstream.log" 2>&1 &
echo $! >"$state/upstream.pid"
for _ in $(seq 300); do
	grep -q "fixture upstream at" "$state/upstream.log" 2>/dev/null && break
	kill -0 "$(cat "$state/upstream.pid")" 2>/dev/null || { cat "$state/upstream.log" >&2; exit 1; }
	sleep 0.1
done
grep -q "fixture upstream at" "$state/upstream.log" || { echo "fixture upstream did not start" >&2; exit 1; }

echo
echo "== archmirror plan -c $state/mirror.yaml"
bin/archmirror plan -c "$state/mirror.yaml" --log-level warn
echo
echo "== archmirror sync -c $state/mirror.yaml"
bin/archmirror sync -c "$state/mirror.yaml" --parallel 4 --log-level warn
echo
echo "== archmirror sync again: nothing left to build"
time bin/archmirror sync -c "$state/mirror.yaml" --log-level warn
echo
echo "== archmirror verify $REG/demo/hello:latest --key $state/signing.pub"
bin/archmirror verify "$REG/demo/hello:latest" --key "$state/signing.pub"

cat <<MSG

The demo is running: registry http://$REG, buildkitd $builder, fixture upstream http://$UP.
Look at the result:
  bin/archmirror plan -c $state/mirror.yaml
  curl -s http://$REG/v2/_catalog
  curl -s http://$REG/v2/demo/hello/tags/list
  curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' http://$REG/v2/demo/hello/manifests/latest
  ls $state/cache/logs/*/            # every job's full build log
Check the signatures, SBOMs, provenance and mirror predicates on every manifest:
  bin/archmirror verify $REG/demo/hello:latest --key $state/signing.pub
  cosign verify --key $state/signing.pub --insecure-ignore-tlog --allow-insecure-registry $REG/demo/hello:latest
  cosign verify-attestation --key $state/signing.pub --type spdxjson --insecure-ignore-tlog --allow-insecure-registry $REG/demo/hello:latest
Stop it with: make demo-stop
MSG
