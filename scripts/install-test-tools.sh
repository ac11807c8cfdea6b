#!/usr/bin/env bash
# Install the real upstream binaries that kubepulse's integration and e2e tests
# run against, built from Go modules on this machine (no Docker, no prebuilt
# downloads), plus Prometheus/promtool from Debian's packages.
#
#   scripts/install-test-tools.sh              # everything
#   scripts/install-test-tools.sh kubectl etcd # only these (names below)
#
# Idempotent: a binary is rebuilt only when its stamp (version, wrapper
# go.mod/go.sum hash, Go version, build flags) changed or the binary is gone.
# Cold build on 2 cores takes tens of minutes; a cached run takes seconds.
# See tests/cluster/BUILD-NOTES.md for measured times.
#
# Environment:
#   KUBEPULSE_TOOLS_DIR     install root (default ~/.cache/kubepulse/tools);
#                           binaries go to $KUBEPULSE_TOOLS_DIR/bin
#   KUBEPULSE_GO_CACHE_DIR  GOMODCACHE/GOCACHE root (default ~/.cache/kubepulse/go)
#   KUBEPULSE_BUILD_JOBS    go build -p (default: number of CPUs)
#   KUBEPULSE_FORCE_REBUILD=1  ignore stamps and rebuild the selected tools
#   KUBEPULSE_SKIP_APT=1    do not install prometheus/promtool with apt-get
#
# Output: one progress line per tool, then a single JSON summary line on stdout.
set -euo pipefail

# ---------------------------------------------------------------- versions --
KUBE_VERSION=v1.36.4          # k8s.io/kubernetes; staging modules at v0.36.4
ETCD_VERSION=v3.6.16          # go.etcd.io/etcd/{server,etcdctl}/v3
KWOK_VERSION=v0.8.0           # sigs.k8s.io/kwok (newer tags need a newer Go)
METRICS_SERVER_VERSION=v0.9.0 # sigs.k8s.io/metrics-server
HELM_VERSION=v4.2.4           # helm.sh/helm/v4
# Kube and etcd versions must agree with tests/cluster/go.mod and
# tests/cluster/etcd/go.mod; the script checks this before building.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_MOD_DIR=$REPO_ROOT/tests/cluster
ETCD_MOD_DIR=$REPO_ROOT/tests/cluster/etcd

TOOLS_DIR=${KUBEPULSE_TOOLS_DIR:-$HOME/.cache/kubepulse/tools}
BIN_DIR=$TOOLS_DIR/bin
STAMP_DIR=$TOOLS_DIR/stamps
GO_CACHE_ROOT=${KUBEPULSE_GO_CACHE_DIR:-$HOME/.cache/kubepulse/go}
JOBS=${KUBEPULSE_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
NICE=                         # builds run at normal priority (gobuild.sh)

ALL_TOOLS=(etcd etcdctl kube-apiserver kube-controller-manager kube-scheduler
           kubectl kwok metrics-server helm prometheus)

log() { printf '[install-test-tools] %s\n' "$*"; }
die() { printf '[install-test-tools] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=scripts/gobuild.sh
source "$REPO_ROOT/scripts/gobuild.sh"

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

# Serialise concurrent runs (two test sessions starting at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS_DIR/.lock"
  flock 9
fi

# -------------------------------------------------------------- go setup ---
need_go=false
for t in "${selected[@]}"; do [[ $t == prometheus ]] || need_go=true; done
if $need_go; then
  command -v go >/dev/null 2>&1 || die "go not found on PATH (need go >= 1.26.4)"
  go_env
  # metrics-server v0.9.0 declares go 1.26.4; everything else go 1.26.0.
  case $GO_VERSION in
    go1.2[7-9]*|go1.[3-9][0-9]*) ;;
    go1.26.*) (( ${GO_VERSION#go1.26.} >= 4 )) 2>/dev/null \
                || die "$GO_VERSION is too old: need go >= 1.26.4" ;;
    *) die "$GO_VERSION is too old: need go >= 1.26.4" ;;
  esac
  grep -q "^	k8s.io/kubernetes $KUBE_VERSION\b" "$KUBE_MOD_DIR/go.mod" \
    || die "tests/cluster/go.mod does not require k8s.io/kubernetes $KUBE_VERSION"
  grep -q "^	go.etcd.io/etcd/server/v3 $ETCD_VERSION\b" "$ETCD_MOD_DIR/go.mod" \
    || die "tests/cluster/etcd/go.mod does not require etcd server $ETCD_VERSION"
fi

# go install pkg@version into BIN_DIR: name version pkg ldflags
install_go_pkg() {
  local name=$1 version=$2 pkg=$3 ldflags=$4
  local stamp start tmpbin
  stamp="tool=$name version=$version pkg=$pkg go=$GO_VERSION ldflags=$ldflags"
  if stamp_ok "$name" "$stamp"; then
    log "$name $version: cached ($BIN_DIR/$name)"
    record "$name" "$version" cached 0
    return
  fi
  log "$name $version: go install $pkg@$version ..."
  start=$(now_ms)
  rm -f "$STAMP_DIR/$name"
  tmpbin=$BIN_DIR/.gobin-$name
  rm -rf "$tmpbin"
  mkdir -p "$tmpbin"
  GOBIN=$tmpbin go install "${COMMON_BUILD_FLAGS[@]}" -ldflags "$ldflags" "$pkg@$version"
  mv -f "$tmpbin/$name" "$BIN_DIR/$name"
  rm -rf "$tmpbin"
  printf '%s' "$stamp" >"$STAMP_DIR/$name"
  local s
  s=$(secs_since "$start")
  log "$name $version: built in ${s}s"
  record "$name" "$version" built "$s"
}

download_modules() { # label moddir
  local start
  start=$(now_ms)
  go -C "$2" mod download
  log "$1: go mod download in $(secs_since "$start")s"
}

# ------------------------------------------------------------- prometheus --
prometheus_version() { # "prometheus, version 2.42.0+ds (branch: ...)" -> 2.42.0+ds
  local v
  v=$(prometheus --version 2>&1 || true)
  v=${v#prometheus, version }
  printf '%s' "${v%% *}"
}

apt_updated=false
apt_update_once() {
  $apt_updated && return
  log "prometheus: apt-get update ..."
  $SUDO apt-get update -qq
  apt_updated=true
}

install_prometheus() {
  local start version
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    version=$(prometheus_version)
    log "prometheus ${version:-?}: cached ($(command -v prometheus), $(command -v promtool))"
    record prometheus "${version:-unknown}" cached 0
  elif [[ ${KUBEPULSE_SKIP_APT:-} == 1 ]]; then
    log "prometheus: not installed and KUBEPULSE_SKIP_APT=1; skipping"
    record prometheus none skipped 0
    return
  else
    command -v apt-get >/dev/null 2>&1 || die "prometheus/promtool missing and apt-get not available"
    SUDO=
    if [[ $(id -u) != 0 ]]; then
      command -v sudo >/dev/null 2>&1 || die "prometheus: need root or sudo for apt-get"
      SUDO=sudo
    fi
    start=$(now_ms)
    # Only refresh package lists when apt does not know the package.
    # (no `| grep -q` here: with pipefail, grep's early exit SIGPIPEs apt-cache)
    local policy
    policy=$(apt-cache policy prometheus 2>/dev/null || true)
    if [[ $policy != *"Candidate: "[0-9]* ]]; then
      apt_update_once
    fi
    # Do not let the package start a Prometheus service (port 9090) on install.
    local policy_created=false
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
      $SUDO chmod 755 /usr/sbin/policy-rc.d
      policy_created=true
    fi
    local rc=0
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
      >/dev/null || rc=$?
    if ((rc != 0)) && ! $apt_updated; then  # stale lists: refresh once and retry
      apt_update_once
      rc=0
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
        >/dev/null || rc=$?
    fi
    if $policy_created; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    ((rc == 0)) || die "apt-get install prometheus failed (exit $rc)"
    version=$(prometheus_version)
    local s
    s=$(secs_since "$start")
    log "prometheus ${version:-?}: installed with apt-get in ${s}s"
    record prometheus "${version:-unknown}" installed "$s"
  fi
  # Same place as the Go-built tools, so tests can use one directory.
  # (readlink -f: $BIN_DIR may itself be on PATH already)
  ln -sfn "$(readlink -f "$(command -v prometheus)")" "$BIN_DIR/prometheus"
  ln -sfn "$(readlink -f "$(command -v promtool)")" "$BIN_DIR/promtool"
  check_version_output prometheus "prometheus, version" "$BIN_DIR/prometheus" --version
  check_version_output promtool "promtool, version" "$BIN_DIR/promtool" --version
}

# ------------------------------------------------------------------ main ----
total_start=$(now_ms)
log "tools dir: $BIN_DIR; go caches: $GO_CACHE_ROOT; jobs: $JOBS; selected: ${selected[*]}"

# Kubernetes ---------------------------------------------------------------
KUBE_TOOLS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
kube_selected=false
for t in "${KUBE_TOOLS[@]}"; do want "$t" && kube_selected=true; done
if $kube_selected; then
  kube_flags=$(kube_ldflags "$KUBE_VERSION" "$KUBE_MOD_DIR")
  need_build=false
  for t in "${KUBE_TOOLS[@]}"; do
    want "$t" || continue
    [[ -x $BIN_DIR/$t ]] || need_build=true
  done
  $need_build && download_modules "kubernetes modules" "$KUBE_MOD_DIR"
  for t in "${KUBE_TOOLS[@]}"; do
    want "$t" || continue
    build_from_module "$t" "$KUBE_VERSION" "$KUBE_MOD_DIR" "k8s.io/kubernetes/cmd/$t" "$kube_flags" "$KUBE_TAGS"
  done
fi

# etcd ---------------------------------------------------------------------
if want etcd || want etcdctl; then
  etcd_ldflags="-s -w"   # etcd's version is a constant; GitSHA stays "Not provided"
  if { want etcd && [[ ! -x $BIN_DIR/etcd ]]; } || { want etcdctl && [[ ! -x $BIN_DIR/etcdctl ]]; }; then
    download_modules "etcd modules" "$ETCD_MOD_DIR"
  fi
  want etcd && build_from_module etcd "$ETCD_VERSION" "$ETCD_MOD_DIR" go.etcd.io/etcd/server/v3 "$etcd_ldflags" ""
  want etcdctl && build_from_module etcdctl "$ETCD_VERSION" "$ETCD_MOD_DIR" go.etcd.io/etcd/etcdctl/v3 "$etcd_ldflags" ""
fi

# go install tools -----------------------------------------------------------
if want kwok; then
  install_go_pkg kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok "-s -w"
  # kwok refuses to start without Stage objects (--config); the upstream stage
  # files ship in the module. Copy the ones the e2e tier uses next to the bins.
  kwok_src=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kwok@$KWOK_VERSION" 2>/dev/null || true)
  if [[ -z $kwok_src || ! -d $kwok_src ]]; then
    go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
    kwok_src=$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION
  fi
  kwok_stages=$TOOLS_DIR/share/kwok-$KWOK_VERSION/stages
  mkdir -p "$kwok_stages"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    install -m 0644 "$kwok_src/kustomize/stage/$f" "$kwok_stages/${f##*/}"
  done
  log "  kwok stage configs: $kwok_stages"
fi
want metrics-server && install_go_pkg metrics-server "$METRICS_SERVER_VERSION" \
  sigs.k8s.io/metrics-server/cmd/metrics-server \
  "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
want helm && install_go_pkg helm "$HELM_VERSION" helm.sh/helm/v4/cmd/helm \
  "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.gitTreeState=clean"

# prometheus + promtool (Debian) -----------------------------------------------
want prometheus && install_prometheus

# ---------------------------------------------------------------- verify ----
want kube-apiserver && check_version_output kube-apiserver "Kubernetes $KUBE_VERSION" "$BIN_DIR/kube-apiserver" --version
want kube-controller-manager && check_version_output kube-controller-manager "Kubernetes $KUBE_VERSION" "$BIN_DIR/kube-controller-manager" --version
want kube-scheduler && check_version_output kube-scheduler "Kubernetes $KUBE_VERSION" "$BIN_DIR/kube-scheduler" --version
want kubectl && check_version_output kubectl "Client Version: $KUBE_VERSION" "$BIN_DIR/kubectl" version --client
want etcd && check_version_output etcd "etcd Version: ${ETCD_VERSION#v}" "$BIN_DIR/etcd" --version
want etcdctl && check_version_output etcdctl "etcdctl version: ${ETCD_VERSION#v}" "$BIN_DIR/etcdctl" version
want kwok && check_version_output kwok "${KWOK_VERSION#v}" "$BIN_DIR/kwok" --version
want metrics-server && check_version_output metrics-server "$METRICS_SERVER_VERSION" "$BIN_DIR/metrics-server" --version
want helm && check_version_output helm "$HELM_VERSION" "$BIN_DIR/helm" version --short

# --------------------------------------------------------------- summary ----
total=$(secs_since "$total_start")
log "done in ${total}s; binaries in $BIN_DIR"
summary_json "$total" "\"tools_dir\":\"$BIN_DIR\""
