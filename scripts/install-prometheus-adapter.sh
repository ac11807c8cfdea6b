#!/usr/bin/env bash
# Build sigs.k8s.io/prometheus-adapter (the upstream custom-metrics adapter that
# kubepulse-adapter's Prometheus source is compared with in
# bench/compare_adapters.py) from its Go module on this machine.
#
#   scripts/install-prometheus-adapter.sh
#
# Built from the wrapper module tests/cluster/prometheus-adapter (go.mod with a
# `tool` line), not with `go install pkg@tag`: go install reads the module's
# @v/list for deprecation notices, and the Go module proxy answers 403 "not
# available" for that list. The wrapper is separate from tests/cluster/go.mod
# because the adapter pins k8s.io/* v0.30.x, the control plane v0.36.x.
#
# Tag choice (Go 1.26, module proxy): v0.12.0 is the newest tag the proxy
# serves (v0.12.1 and v0.13.0 answer 403 "not available"). Version bump: change
# PROMETHEUS_ADAPTER_VERSION below, then in tests/cluster/prometheus-adapter run
# `go get sigs.k8s.io/prometheus-adapter@<tag> && go mod tidy`.
# Measured build times: tests/cluster/prometheus-adapter/README.md.
#
# Idempotent like scripts/install-test-tools.sh: a stamp (version, package, Go
# version, flags) decides whether to rebuild; reuses the same Go caches.
#
# Environment: KUBEPULSE_TOOLS_DIR, KUBEPULSE_GO_CACHE_DIR, KUBEPULSE_BUILD_JOBS,
# KUBEPULSE_FORCE_REBUILD=1.
# Output: progress lines on stderr, one JSON summary line on stdout.
set -euo pipefail

PROMETHEUS_ADAPTER_VERSION=v0.12.0   # must match tests/cluster/prometheus-adapter/go.mod
PKG=sigs.k8s.io/prometheus-adapter/cmd/adapter
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOD_DIR=$REPO_ROOT/tests/cluster/prometheus-adapter
NAME=prometheus-adapter

TOOLS_DIR=${KUBEPULSE_TOOLS_DIR:-$HOME/.cache/kubepulse/tools}
BIN_DIR=$TOOLS_DIR/bin
STAMP_DIR=$TOOLS_DIR/stamps
GO_CACHE_ROOT=${KUBEPULSE_GO_CACHE_DIR:-$HOME/.cache/kubepulse/go}
JOBS=${KUBEPULSE_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}

log() { printf '[install-prometheus-adapter] %s\n' "$*" >&2; }
die() { printf '[install-prometheus-adapter] ERROR: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }
secs_since() {
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

command -v go >/dev/null 2>&1 || die "go not found on PATH (need go >= 1.24 for the wrapper's tool directive; tested with 1.26.8)"
mkdir -p "$BIN_DIR" "$STAMP_DIR" "$GO_CACHE_ROOT"

# Same lock as install-test-tools.sh: never two Go builds at once on 2 cores.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS_DIR/.lock"
  flock 9
fi

export GOMODCACHE=$GO_CACHE_ROOT/mod
export GOCACHE=$GO_CACHE_ROOT/build
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS=
GO_VERSION=$(go env GOVERSION)
grep -q "^	sigs.k8s.io/prometheus-adapter $PROMETHEUS_ADAPTER_VERSION\b" "$MOD_DIR/go.mod" \
  || die "tests/cluster/prometheus-adapter/go.mod does not require sigs.k8s.io/prometheus-adapter $PROMETHEUS_ADAPTER_VERSION"
mod_hash=$(cat "$MOD_DIR/go.mod" "$MOD_DIR/go.sum" | sha256sum | cut -c1-16)

LDFLAGS="-s -w"
stamp="tool=$NAME version=$PROMETHEUS_ADAPTER_VERSION pkg=$PKG go=$GO_VERSION mod=$mod_hash ldflags=$LDFLAGS trimpath=1"
status=cached
secs=0
if [[ ${KUBEPULSE_FORCE_REBUILD:-} != 1 && -x $BIN_DIR/$NAME && -f $STAMP_DIR/$NAME ]] &&
   [[ $(cat "$STAMP_DIR/$NAME") == "$stamp" ]]; then
  log "$NAME $PROMETHEUS_ADAPTER_VERSION: cached ($BIN_DIR/$NAME)"
else
  log "$NAME $PROMETHEUS_ADAPTER_VERSION: go build $PKG (-p $JOBS, nice 10) ..."
  start=$(now_ms)
  rm -f "$STAMP_DIR/$NAME"
  go -C "$MOD_DIR" mod download
  nice -n 10 go -C "$MOD_DIR" build -trimpath -buildvcs=false -p "$JOBS" -mod=readonly \
    -ldflags "$LDFLAGS" -o "$BIN_DIR/.$NAME.tmp" "$PKG" \
    || die "go build $PKG@$PROMETHEUS_ADAPTER_VERSION failed (see above)"
  mv -f "$BIN_DIR/.$NAME.tmp" "$BIN_DIR/$NAME"
  printf '%s' "$stamp" >"$STAMP_DIR/$NAME"
  secs=$(secs_since "$start")
  status=built
  log "$NAME $PROMETHEUS_ADAPTER_VERSION: built in ${secs}s"
fi

# The adapter has no --version flag; --help (which exits 2, pflag's ErrHelp) proves
# the binary runs. No `| grep -q` straight off the binary: pipefail would see its 2.
help=$("$BIN_DIR/$NAME" --help 2>&1 || true)
[[ $help == *--prometheus-url* && $help == *--lister-kubeconfig* ]] \
  || die "$BIN_DIR/$NAME --help does not mention --prometheus-url; rebuild with KUBEPULSE_FORCE_REBUILD=1"
printf '{"tool":"%s","version":"%s","status":"%s","seconds":%s,"path":"%s"}\n' \
  "$NAME" "$PROMETHEUS_ADAPTER_VERSION" "$status" "$secs" "$BIN_DIR/$NAME"
