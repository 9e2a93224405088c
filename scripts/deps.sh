#!/usr/bin/env bash
# Installs what archmirror's tests and demo need on a fresh machine (Debian, root, Go, git, gcc).
# Idempotent: every step is skipped when its result is already there. Binaries built from
# module source are cached by version under $ARCHMIRROR_TOOLS (default ~/.cache/archmirror/bin).
set -euo pipefail

BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.34.2}
CRANE_VERSION=${CRANE_VERSION:-v0.22.1}
COSIGN_VERSION=${COSIGN_VERSION:-v3.1.3}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-v1.7.12}
TOOLS=${ARCHMIRROR_TOOLS:-$HOME/.cache/archmirror/bin}
DEBS=${ARCHMIRROR_DEBS:-$HOME/.cache/archmirror/debs}
mkdir -p "$TOOLS"

log() { printf '[deps] %s\n' "$*" >&2; }

apt_install() {
	local missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "apt-get install ${missing[*]}"
	if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || [ -n "${ARCHMIRROR_APT_UPDATE:-}" ]; then
		apt-get update -qq
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

# buildkitd cannot be `go install`ed (its go.mod has exclude directives): build it inside a
# writable copy of the downloaded module, as ../shared/MACHINE-NOTES.md describes.
build_buildkitd() {
	local bin="$TOOLS/buildkitd-$BUILDKIT_VERSION"
	if [ -x "$bin" ]; then return 0; fi
	log "building buildkitd $BUILDKIT_VERSION from module source (a few minutes, cached)"
	local dir
	dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
	local work
	work=$(mktemp -d)
	cp -r "$dir" "$work/buildkit"
	chmod -R u+w "$work/buildkit"
	(cd "$work/buildkit" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
		-o "$bin.tmp" ./cmd/buildkitd)
	mv "$bin.tmp" "$bin"
	rm -rf "$work"
}

go_tool() { # name module version
	local bin="$TOOLS/$1-$3"
	[ -x "$bin" ] && return 0
	log "go install $2@$3"
	GOBIN="$TOOLS/.gobin" go install "$2@$3"
	mv "$TOOLS/.gobin/$1" "$bin"
}

enable_binfmt() {
	[ -d /proc/sys/fs/binfmt_misc ] || return 0
	[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
	update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
}

# busybox-static for amd64 and arm64: testenv.BaseImage makes the two-platform base image of the
# build tests from them (no registry serves images here).
download_debs() {
	local have=0
	for arch in amd64 arm64; do
		compgen -G "$DEBS/busybox-static_*_$arch.deb" >/dev/null && have=$((have + 1))
	done
	[ $have -eq 2 ] && return 0
	local native
	native=$(dpkg --print-architecture)
	for arch in amd64 arm64; do
		if [ "$arch" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
			log "dpkg --add-architecture $arch"
			dpkg --add-architecture "$arch"
		fi
	done
	log "apt-get download busybox-static:amd64 busybox-static:arm64 into $DEBS"
	apt-get update -qq
	mkdir -p "$DEBS"
	(cd "$DEBS" && apt-get -o APT::Sandbox::User=root download -qq busybox-static:amd64 busybox-static:arm64)
}

want=${*:-registry buildkit}
for w in $want; do
	case $w in
	registry) apt_install docker-registry ;;
	buildkit)
		# python3: the docker-container:// test's stand-in docker CLI is a python3 script
		apt_install runc qemu-user-static binfmt-support
		command -v python3 >/dev/null 2>&1 || apt_install python3-minimal
		enable_binfmt
		build_buildkitd
		download_debs
		;;
	debs) download_debs ;;
	crane) go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION" ;;
	cosign) go_tool cosign github.com/sigstore/cosign/v3/cmd/cosign "$COSIGN_VERSION" ;; # ~8 min cold
	chromium) apt_install chromium ;; # headless browser for the status page test (testenv.Chromium)
	actionlint) # lints examples/github-actions (testenv.Actionlint); shellcheck checks their run: scripts
		go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION"
		apt_install shellcheck
		;;
	*) log "unknown component $w" && exit 2 ;;
	esac
done
ln -sf "$TOOLS/buildkitd-$BUILDKIT_VERSION" "$TOOLS/buildkitd" 2>/dev/null || true
log "ok: $want"
