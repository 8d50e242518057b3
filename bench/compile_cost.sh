#!/usr/bin/env bash
# What including memlens costs a translation unit, as a ratio to a unit that includes <map>,
# <string>, <vector> and <iostream>, measured in the same run (best of N compiles each, taken in
# turns so that both see the same machine), and the code each unit emits.
# Time ratios are compared with their goals and reported; they swing with the machine's load, so
# the exit status rests on the emitted code, which does not: a case that emits more than its
# limit fails ("pay for what you use": a header alone emits nothing).
# Usage: bench/compile_cost.sh [runs]   (CXX and CXXFLAGS are honoured; default g++ -std=c++17 -O2)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${1:-3}
cxx=${CXX:-g++}
read -r -a flags <<<"${CXXFLAGS:--std=c++17 -O2}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/baseline.cpp" <<'CPP'
#include <iostream>
#include <map>
#include <string>
#include <vector>
int main() {}
CPP

# name, goal (time ratio to the baseline, 0 for none), limit on emitted .text bytes, header.
# The hooks alone emit the event path, the stack walks (the hybrid walk's call-frame reader is
# about 10 KB of it), the settings reader, failure injection's failing paths and the per-block
# mode's lifetimes and handoff: about 51 KB; a report writer there would pass 52 KB. The hooks
# unit adds every report writer, the default leak suppressions and the leak-kinds scan that the
# exit report runs, with the kinds carried into the snapshot every exit format writes
# (set_leak_kinds, the JSON members, the HTML report's kinds, chains and suppressed tables):
# 321,109 bytes with g++ 12.
cases=(
  "track.hpp              2  64      memlens/track.hpp"
  "memlens.hpp            5  64      memlens/memlens.hpp"
  "sources/new.hpp        0  53248   memlens/sources/new.hpp"
  "hooks.hpp              12 327680  memlens/hooks.hpp"
)

# Prints the best wall-clock milliseconds of `runs` compiles of $1, and the object's text size.
compile_ms() {
  local source=$1 best=
  for ((i = 0; i < runs; i++)); do
    local start end
    start=$(date +%s%N)
    "$cxx" "${flags[@]}" -I"$root/include" -c "$source" -o "$work/out.o"
    end=$(date +%s%N)
    local ms=$(((end - start) / 1000000))
    if [[ -z $best || $ms -lt $best ]]; then best=$ms; fi
  done
  echo "$best"
}

text_bytes() { size -A "$1" | awk '$1 ~ /^\.text/ { sum += $2 } END { print sum + 0 }'; }

echo "compiler: $("$cxx" --version | head -n1); flags: ${flags[*]}; best of $runs"
printf '%-18s %9s %9s %8s %6s %12s %12s\n' case "case ms" "base ms" ratio goal ".text bytes" "text limit"
failed=0
for entry in "${cases[@]}"; do
  read -r name limit text_limit header <<<"$entry"
  printf '#include <%s>\nint main() {}\n' "$header" >"$work/case.cpp"
  base=$(compile_ms "$work/baseline.cpp")
  ms=$(compile_ms "$work/case.cpp")
  text=$(text_bytes "$work/out.o")
  ratio=$(awk -v a="$ms" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
  verdict=""
  if [[ $limit != 0 ]] && awk -v r="$ratio" -v l="$limit" 'BEGIN { exit !(r > l) }'; then
    verdict="  time goal not met"
  fi
  if ((text > text_limit)); then
    verdict+="  EMITS MORE CODE THAN ITS LIMIT"
    failed=1
  fi
  shown_limit="${limit}x"
  [[ $limit != 0 ]] || shown_limit="-"
  printf '%-18s %9d %9d %7sx %6s %12s %12s%s\n' "$name" "$ms" "$base" "$ratio" "$shown_limit" "$text" "$text_limit" "$verdict"
done
exit $failed
