#!/usr/bin/env bash
# Build the control-plane binaries of an OLDER Kubernetes release, for running
# the e2e tier against a second minor (issue 8, compatibility). Same approach
# and conventions as scripts/install-test-tools.sh: a wrapper module
# (tests/cluster/kube-old/go.mod) with the staging modules replaced by their
# published v0.<minor>.<patch> tags, the same Go caches, flags, ldflags and
# stamp files. etcd, kwok and metrics-server are NOT built here: the e2e tier
# keeps using the main tools for them.
#
#   scripts/install-old-kube.sh                  # apiserver, controller-manager, scheduler, kubectl
#   scripts/install-old-kube.sh kube-apiserver   # only these
#   scripts/install-old-kube.sh --print-bin-dir  # print where the binaries go, build nothing
#
# Then run the tier against them:
#
#   KUBEPULSE_E2E_KUBE_BIN_DIR=$(scripts/install-old-kube.sh --print-bin-dir) \
#     python -m pytest tests/e2e/test_hpa_on_kubepulse.py tests/e2e/test_adapter_objects.py
#
# Binaries land in $KUBEPULSE_TOOLS_DIR/kube-<version>/bin (default
# ~/.cache/kubepulse/tools/kube-<version>/bin), stamps next to them. A binary is
# rebuilt only when its stamp (version, wrapper go.mod/go.sum hash, Go version,
# flags) changed. Cold build on 2 cores: several minutes; cached: about a second.
#
# Environment: KUBEPULSE_TOOLS_DIR, KUBEPULSE_GO_CACHE_DIR, KUBEPULSE_BUILD_JOBS,
# KUBEPULSE_FORCE_REBUILD=1, as for install-test-tools.sh. KUBEPULSE_BUILD_NICE
# (default 10): the builds run under `nice -n` so that a shared machine stays usable.
#
# Output: one progress line per tool, then a single JSON summary line on stdout.
set -euo pipefail

# ---------------------------------------------------------------- versions --
# Must agree with tests/cluster/kube-old/go.mod (checked below). Version bump:
# see the comment at the top of that go.mod.
#
# What builds with Go 1.26.8 through such a wrapper (measured 2026-11-23, 2 shared
# cores, another Go build running alongside, GOCACHE warm only for the 1.36 build):
#   v1.29.15  builds; apiserver+controller-manager+scheduler cold in one `go build`
#             561 s (nice 10, -p 2); the whole e2e tier passes against it except
#             test_chart.py::test_every_scenario_passes_server_side_dry_run, whose CRD
#             setup pipes JSON documents joined by "---", which kubectl v1.29 cannot parse
#   v1.28.15  builds; the same three cold 945 s (nice 19, -p 1); this is the one pinned
#   v1.27.16  fails before compiling: `go mod tidy` ->
#             k8s.io/controller-manager@v0.27.16: verifying module: ... reading
#             https://proxy.golang.org/sumdb/sum.golang.org/lookup/k8s.io/controller-manager@v0.27.16:
#             404 Not Found
#   v1.27.15  refused by the proxy: 403 Forbidden "This module version is not available."
# The proxy here lists only some versions (`go list -m -versions` shows v1.29.6,
# v1.30.4, v1.30.14, v1.31.x ... but v1.28.15 and v1.29.15 are served): ask for
# the exact version rather than trusting the list.
OLD_KUBE_VERSION=v1.28.15

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MOD_DIR=$REPO_ROOT/tests/cluster/kube-old

TOOLS_DIR=${KUBEPULSE_TOOLS_DIR:-$HOME/.cache/kubepulse/tools}
ROOT_DIR=$TOOLS_DIR/kube-$OLD_KUBE_VERSION
BIN_DIR=$ROOT_DIR/bin
STAMP_DIR=$ROOT_DIR/stamps
GO_CACHE_ROOT=${KUBEPULSE_GO_CACHE_DIR:-$HOME/.cache/kubepulse/go}
JOBS=${KUBEPULSE_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
NICE=${KUBEPULSE_BUILD_NICE:-10}

ALL_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

log() { printf '[install-old-kube] %s\n' "$*" >&2; }
die() { printf '[install-old-kube] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/gobuild.sh
source "$REPO_ROOT/scripts/gobuild.sh"

if [[ ${1:-} == --print-bin-dir ]]; then
  printf '%s\n' "$BIN_DIR"
  exit 0
fi

# ------------------------------------------------------------------ select --
selected=()
if (($#)); then
  for t in "$@"; do
    case " ${ALL_TOOLS[*]} " in
      *" $t "*) selected+=("$t") ;;
      *) die "unknown tool '$t' (known: ${ALL_TOOLS[*]})" ;;
    esac
  done
else
  selected=("${ALL_TOOLS[@]}")
fi
want() { case " ${selected[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

mkdir -p "$BIN_DIR" "$STAMP_DIR" "$GO_CACHE_ROOT"

# Serialise concurrent runs; a separate lock from install-test-tools.sh so the
# two can run side by side (they share only the Go caches, which are safe).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT_DIR/.lock"
  flock 9
fi

# -------------------------------------------------------------- go setup ---
command -v go >/dev/null 2>&1 || die "go not found on PATH (need go >= 1.26.0)"
go_env
case $GO_VERSION in
  go1.2[6-9]*|go1.[3-9][0-9]*) ;;
  *) die "$GO_VERSION is too old: the wrapper module declares go 1.26.0" ;;
esac
grep -q "^require k8s.io/kubernetes $OLD_KUBE_VERSION\$\|^	k8s.io/kubernetes $OLD_KUBE_VERSION\b" "$MOD_DIR/go.mod" \
  || die "tests/cluster/kube-old/go.mod does not require k8s.io/kubernetes $OLD_KUBE_VERSION"

# ------------------------------------------------------------------ main ----
total_start=$(now_ms)
log "kube $OLD_KUBE_VERSION into $BIN_DIR; go caches: $GO_CACHE_ROOT; jobs: $JOBS; selected: ${selected[*]}"

need_build=false
for t in "${selected[@]}"; do [[ -x $BIN_DIR/$t ]] || need_build=true; done
if $need_build; then
  start=$(now_ms)
  go -C "$MOD_DIR" mod download
  log "kubernetes $OLD_KUBE_VERSION modules: go mod download in $(secs_since "$start")s"
fi

kube_flags=$(kube_ldflags "$OLD_KUBE_VERSION" "$MOD_DIR")

for t in "${ALL_TOOLS[@]}"; do
  want "$t" || continue
  build_from_module "$t" "$OLD_KUBE_VERSION" "$MOD_DIR" "k8s.io/kubernetes/cmd/$t" "$kube_flags" "$KUBE_TAGS"
done

want kube-apiserver && check_version_output kube-apiserver "Kubernetes $OLD_KUBE_VERSION" "$BIN_DIR/kube-apiserver" --version
want kube-controller-manager && check_version_output kube-controller-manager "Kubernetes $OLD_KUBE_VERSION" "$BIN_DIR/kube-controller-manager" --version
want kube-scheduler && check_version_output kube-scheduler "Kubernetes $OLD_KUBE_VERSION" "$BIN_DIR/kube-scheduler" --version
want kubectl && check_version_output kubectl "Client Version: $OLD_KUBE_VERSION" "$BIN_DIR/kubectl" version --client

total=$(secs_since "$total_start")
log "done in ${total}s; binaries in $BIN_DIR"
summary_json "$total" "\"kube_version\":\"$OLD_KUBE_VERSION\",\"kube_bin_dir\":\"$BIN_DIR\""
