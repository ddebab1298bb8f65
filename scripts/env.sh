# Sourced by the other scripts: picks the Python whose torch provides LibTorch (LOTA_PYTHON if set, else
# the project venv's, else python3), and the build dir.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${LOTA_PYTHON:-}" ]; then
    :  # given by the caller (e.g. LOTA_PYTHON=python3 on a machine without the project venv)
elif [ -x "$ROOT/.venv/bin/python" ]; then
    LOTA_PYTHON="$ROOT/.venv/bin/python"
else
    LOTA_PYTHON="$(command -v python3)"
fi
BUILD_DIR="${LOTA_BUILD_DIR:-$ROOT/build}"
if [ -d "$ROOT/.deps/root/usr" ]; then
    export CMAKE_PREFIX_PATH="$ROOT/.deps/root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export PKG_CONFIG_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu/pkgconfig:$ROOT/.deps/root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export PKG_CONFIG_SYSROOT_DIR="$ROOT/.deps/root"
    export CPATH="$ROOT/.deps/root/usr/include${CPATH:+:$CPATH}"
    export LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$ROOT/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/lota-ccache}"
# Paths relative to the parent of the checkout, so worktrees and clones share cache hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$ROOT")}"
export LOTA_PYTHON BUILD_DIR ROOT
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
