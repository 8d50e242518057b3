#!/usr/bin/env bash
# Builds and runs the consumer against an installed memlens through pkg-config.
# Usage: PKG_CONFIG_PATH=<prefix>/share/pkgconfig tests/consumer/pkgconfig.sh [output dir]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$(mktemp -d)}
mkdir -p "$out"

# Word splitting of the pkg-config output is intended.
# shellcheck disable=SC2046
"${CXX:-c++}" -std=c++17 -Wall -Wextra "$here/main.cpp" -o "$out/consumer_pkgconfig" \
  $(pkg-config --cflags --libs memlens)
"$out/consumer_pkgconfig"
