# Building tools from Go modules: what install-test-tools.sh and install-old-kube.sh share.
# Sourced, not run. The caller defines log and die, and sets BIN_DIR, STAMP_DIR, JOBS and
# GO_CACHE_ROOT; NICE (optional) runs the builds under `nice -n $NICE`.

now_ms() { date +%s%3N; }
secs_since() { # $1 = start ms -> seconds with one decimal
  local d=$(( $(now_ms) - $1 ))
  printf '%d.%d' $((d / 1000)) $(((d % 1000) / 100))
}

# The Go environment every build uses; sets GO_VERSION and COMMON_BUILD_FLAGS.
go_env() {
  export GOMODCACHE=$GO_CACHE_ROOT/mod
  export GOCACHE=$GO_CACHE_ROOT/build
  export GOTOOLCHAIN=local   # never fetch another toolchain; fail clearly instead
  export CGO_ENABLED=0
  export GOFLAGS=           # ignore developer-wide GOFLAGS; flags are explicit below
  GO_VERSION=$(go env GOVERSION)
  COMMON_BUILD_FLAGS=(-trimpath -buildvcs=false -p "$JOBS")
}

hash_files() { cat "$@" | sha256sum | cut -c1-16; }

# results for the JSON summary: name|version|status|seconds
results=()
record() { results+=("$1|$2|$3|$4"); }

stamp_ok() { # name stamp-content
  [[ ${KUBEPULSE_FORCE_REBUILD:-} != 1 ]] &&
    [[ -x $BIN_DIR/$1 ]] && [[ -f $STAMP_DIR/$1 ]] &&
    [[ $(cat "$STAMP_DIR/$1") == "$2" ]]
}

check_version_output() { # name expected-substring command...
  local name=$1 expect=$2 out
  shift 2
  if ! out=$("$@" 2>&1); then
    die "$name: '$*' failed: $out"
  fi
  out=$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-160)
  [[ $out == *"$expect"* ]] || die "$name: expected '$expect' in version output, got: $out"
  log "  $name --version: $out"
}

# Build one binary from a wrapper module: name version moddir pkg ldflags tags
build_from_module() {
  local name=$1 version=$2 moddir=$3 pkg=$4 ldflags=$5 tags=$6
  local stamp start s
  stamp="tool=$name version=$version pkg=$pkg go=$GO_VERSION mod=$(hash_files "$moddir/go.mod" "$moddir/go.sum") tags=$tags ldflags=$ldflags"
  if stamp_ok "$name" "$stamp"; then
    log "$name $version: cached ($BIN_DIR/$name)"
    record "$name" "$version" cached 0
    return
  fi
  log "$name $version: building $pkg (${NICE:+nice -n $NICE }go build -p $JOBS) ..."
  start=$(now_ms)
  rm -f "$STAMP_DIR/$name"
  ${NICE:+nice -n "$NICE"} go -C "$moddir" build "${COMMON_BUILD_FLAGS[@]}" -mod=readonly \
    ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$BIN_DIR/.$name.tmp" "$pkg"
  mv -f "$BIN_DIR/.$name.tmp" "$BIN_DIR/$name"
  printf '%s' "$stamp" >"$STAMP_DIR/$name"
  s=$(secs_since "$start")
  log "$name $version: built in ${s}s"
  record "$name" "$version" built "$s"
}

# The -ldflags of a Kubernetes binary: version moddir. As upstream's
# hack/lib/version.sh: both version packages; buildDate is the release's tag time (like
# SOURCE_DATE_EPOCH), so rebuilds are reproducible.
kube_ldflags() {
  local version=$1 moddir=$2 minor date flags vpkg
  minor=${version#v1.}
  minor=${minor%%.*}
  date=$(go -C "$moddir" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
  flags="-s -w"
  for vpkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $vpkg.gitVersion=$version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
    flags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$date"
  done
  printf '%s' "$flags"
}
KUBE_TAGS=selinux,notest,grpcnotrace   # as upstream's non-debug builds

# The one JSON summary line: its leading fields (`"tools_dir":"..."`), then the tools.
summary_json() {
  local total=$1 leading=$2 json sep= name version status secs r
  json="{$leading,\"tools\":{"
  for r in "${results[@]}"; do
    IFS='|' read -r name version status secs <<<"$r"
    json+="$sep\"$name\":{\"version\":\"$version\",\"status\":\"$status\",\"seconds\":$secs}"
    sep=,
  done
  printf '%s},"total_seconds":%s}\n' "$json" "$total"
}
