# Shared by scripts/test and scripts/demo. Sourced, not run.

KUBEPULSE_CACHE=${KUBEPULSE_CACHE:-$HOME/.cache/kubepulse}
export KUBEPULSE_CACHE

step() { printf '\n==> %s\n' "$*" >&2; }

# A venv outside the checkout, rebuilt only when the dependency list changes. The project
# itself is always reinstalled (editable, no deps) because every clone lives at a new path.
ensure_venv() {
    local venv="$KUBEPULSE_CACHE/venv" stamp want
    want=$( { python3 --version; sha256sum pyproject.toml | cut -d' ' -f1; } | tr '\n' ' ')
    stamp="$venv/.kubepulse-stamp"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        step "creating the Python environment in $venv (first run, or pyproject.toml changed)"
        rm -rf "$venv"
        python3 -m venv "$venv"
        # setuptools from pyproject's [build-system]: the quick reinstall below builds
        # without isolation, with the venv's own setuptools.
        "$venv/bin/python" -m pip install --quiet --upgrade pip "setuptools>=77"
        "$venv/bin/python" -m pip install --quiet -e ".[dev]"
        echo "$want" > "$stamp"
    else
        "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
            || "$venv/bin/python" -m pip install --quiet --no-deps -e . >/dev/null
    fi
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
}
