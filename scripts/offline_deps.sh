#!/usr/bin/env bash
# Downloads the Debian packages the build needs into .deps/deb, for a machine without network access:
# copy the checkout there and scripts/bootstrap.sh unpacks them into .deps/root. Run on a networked machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.deps/deb"
cd "$ROOT/.deps/deb"
apt-get download nlohmann-json3-dev libcli11-dev libpcre2-dev libpcre2-8-0 libgtest-dev
