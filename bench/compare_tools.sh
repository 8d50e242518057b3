#!/usr/bin/env bash
# Runs bench/alloc_workload.cpp's allocate+free loop (20 calls deep) untracked, under memlens in
# each mode (per-block mode too), and under heaptrack and Valgrind when they are installed, and
# prints the cost per pair beside the untracked one. Usage: bench/compare_tools.sh [build-dir] [pairs]
set -euo pipefail

build=${1:-build}
pairs=${2:-2000000}
plain=$build/bench/alloc_workload_plain
hooked=$build/bench/alloc_workload
for program in "$plain" "$hooked"; do
  [[ -x $program ]] || { echo "missing $program: build the bench targets first" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

base=$("$plain" "$pairs")
printf '%-34s %12s %12s %10s\n' "profiler" "ns/pair" "+ns/pair" "ratio"
row() {
  awk -v name="$1" -v ns="$2" -v base="$base" \
    'BEGIN { printf "%-34s %12.1f %12.1f %9.1fx\n", name, ns, ns - base, ns / base }'
}
row "untracked" "$base"
for mode in counters sampled sites; do
  row "memlens $mode" "$(MEMLENS_MODE=$mode "$hooked" "$pairs")"
done
# Per-block mode, which classify_leaks() and leak_check need: every block in the live table too.
row "memlens sites+blocks" "$(MEMLENS_MODE=sites MEMLENS_BLOCKS=1 "$hooked" "$pairs")"

# The external tools are slow: a tenth of the pairs is plenty for a stable figure.
few=$((pairs / 10))
if command -v heaptrack >/dev/null; then
  ns=$(cd "$work" && heaptrack -o "$work/heaptrack" "$plain" "$few" 2>/dev/null | grep -E '^[0-9.]+$' | tail -n1)
  row "heaptrack" "$ns"
else
  echo "heaptrack: not installed (apt-get install heaptrack)"
fi
if command -v valgrind >/dev/null; then
  row "valgrind memcheck" "$(valgrind --tool=memcheck --leak-check=full -q "$plain" "$few" 2>/dev/null)"
  row "valgrind massif" "$(valgrind --tool=massif --massif-out-file="$work/massif" -q "$plain" "$few" 2>/dev/null)"
else
  echo "valgrind: not installed (apt-get install valgrind)"
fi
