#!/usr/bin/env bash
# Runs bench/scale_workload.cpp's two workloads, which keep millions of blocks alive, untracked,
# under memlens in each mode, under libmemlens_preload.so (counters, sampled, sites) where it is
# built, and under heaptrack and Valgrind (memcheck, massif) when they are installed, and prints the CPU time and peak resident set of each run beside the
# untracked one, and what sites mode (and the preload mode's) adds as a fraction of
# what heaptrack adds (the goal is at most 0.2).
# Usage: bench/scale.sh [build-dir] [map-keys] [document-records] [runs]
# Valgrind runs the untracked build at a tenth of the sizes (VALGRIND_DIVISOR, default 10), beside
# an untracked run at that size: at the full size it takes many minutes.
# Each row is the run with the median CPU time of `runs` runs (default 3): on a shared virtual
# machine single runs move by more than counters mode costs.
#
# CPU time is user + system of the whole process tree, from GNU time: it counts every descendant
# that was waited for, and heaptrack's script waits for its background pipeline (heaptrack_interpret
# piped into the compressor) as one job, so the interpreter is counted. The peak resident set is the
# profiled program's own (getrusage at the end of main, printed on stderr), not its profiler's.
# Every MEMLENS_* variable is cleared first: memlens runs with its defaults (32-frame stacks, the
# hybrid walk, a sample per 512 KiB) and writes no report.
set -euo pipefail

build=${1:-build}
map_keys=${2:-1000000}
document_records=${3:-100000}
runs=${4:-3}
valgrind_divisor=${VALGRIND_DIVISOR:-10}
plain=$build/bench/scale_workload_plain
hooked=$build/bench/scale_workload
# Measured too where it is built (MEMLENS_PRELOAD_LIBRARY names another copy).
preload=${MEMLENS_PRELOAD_LIBRARY:-$build/libmemlens_preload.so}
for program in "$plain" "$hooked"; do
  [[ -x $program ]] || { echo "missing $program: build scale_workload and scale_workload_plain first" >&2; exit 2; }
done
gnu_time=/usr/bin/time
"$gnu_time" -f '%U' true >/dev/null 2>&1 || { echo "needs GNU time at $gnu_time (apt-get install time)" >&2; exit 2; }

while read -r name; do unset "$name"; done < <(compgen -e | grep '^MEMLENS_' || true)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure <label> <command...>: runs the command `runs` times and keeps the figures of the run
# with the median CPU time.
measure() {
  local results=()
  for ((run = 0; run < runs; run++)); do
    measure_once "$@"
    results+=("$cpu $wall $rss_mib $sum")
  done
  read -r cpu wall rss_mib sum < <(printf '%s\n' "${results[@]}" | sort -n -k1,1 | sed -n "$(((runs + 1) / 2))p")
}

# measure_once <label> <command...>: runs the command under GNU time and sets cpu, wall, rss_mib
# and sum (the workload's checksum line). Exits if the command fails or prints no checksum.
measure_once() {
  local label=$1
  shift
  if ! "$gnu_time" -o "$work/time" -f '%e %U %S' "$@" >"$work/out" 2>"$work/err"; then
    echo "$label failed: $*" >&2
    cat "$work/err" >&2
    exit 1
  fi
  local figures
  figures=$(tail -n1 "$work/time")
  wall=$(awk '{ print $1 }' <<<"$figures")
  cpu=$(awk '{ printf "%.2f", $2 + $3 }' <<<"$figures")
  sum=$(grep -E '^checksum [0-9a-f]{16}$' "$work/out" || true)
  [[ $(grep -c '^checksum' "$work/out") == 1 ]] || sum=""
  local rss_kb
  rss_kb=$(grep -E '^peak_rss_kb [0-9]+$' "$work/err" | awk '{ print $2 }' || true)
  if [[ -z $sum || -z $rss_kb ]]; then
    echo "$label printed no single checksum line or no peak: $*" >&2
    cat "$work/out" "$work/err" >&2
    exit 1
  fi
  rss_mib=$(awk -v kb="$rss_kb" 'BEGIN { printf "%.1f", kb / 1024 }')
}

summary=()
base=""
expected=""

# row <label>: prints the figures measure just set, against the untracked run's CPU time in base.
row() {
  awk -v name="$1" -v cpu="$cpu" -v base="$base" -v rss="$rss_mib" -v wall="$wall" \
    'BEGIN { printf "%-20s %8.2f %9.2f %8s %12.1f %8.2f\n", name, cpu, cpu - base,
             (base > 0 ? sprintf("%.2fx", cpu / base) : "-"), rss, wall }'
}

same_checksum() {
  [[ $sum == "$expected" ]] || { echo "$1 printed '$sum', the untracked run '$expected'" >&2; exit 1; }
}

added() { awk -v c="$cpu" -v b="$base" 'BEGIN { printf "%.2f", c - b }'; }

# workload <name> <size> <what the size counts>
workload() {
  local name=$1 size=$2 what=$3
  local sites_added="" heaptrack_added=""

  measure "untracked $name" "$plain" "$name" "$size"
  base=$cpu
  expected=$sum
  echo
  echo "$name workload, $size $what ($expected)"
  printf '%-20s %8s %9s %9s %12s %8s\n' "mode" "CPU s" "+CPU s" "ratio" "max RSS MiB" "wall s"
  row "untracked"
  for mode in counters sampled sites; do
    MEMLENS_MODE=$mode measure "memlens $mode" "$hooked" "$name" "$size"
    same_checksum "memlens $mode"
    row "memlens $mode"
    if [[ $mode == sites ]]; then sites_added=$(added); fi
  done
  # Per-block mode: every block in the live table too, as leak checks and footprints need.
  MEMLENS_MODE=sites MEMLENS_BLOCKS=1 measure "memlens sites, blocks" "$hooked" "$name" "$size"
  same_checksum "memlens sites, blocks"
  row "memlens sites+blocks"
  # The preload mode: the untracked build, profiled whole by libmemlens_preload.so.
  local preload_added=""
  if [[ -f $preload ]]; then
    for mode in counters sampled sites; do
      LD_PRELOAD=$preload MEMLENS_MODE=$mode measure "preload $mode" "$plain" "$name" "$size"
      same_checksum "preload $mode"
      row "preload $mode"
      if [[ $mode == sites ]]; then preload_added=$(added); fi
    done
  fi
  if command -v heaptrack >/dev/null; then
    measure "heaptrack" heaptrack -o "$work/heaptrack-$name" "$plain" "$name" "$size"
    same_checksum "heaptrack"
    row "heaptrack"
    heaptrack_added=$(added)
    rm -f "$work/heaptrack-$name".*
  else
    echo "heaptrack: not installed (apt-get install heaptrack)"
  fi
  if command -v valgrind >/dev/null; then
    local small=$((size / valgrind_divisor)) full_base=$base
    measure "untracked $name, small" "$plain" "$name" "$small"
    base=$cpu
    expected=$sum
    echo "Valgrind at $small $what (1/$valgrind_divisor), against the untracked run at that size:"
    row "untracked, 1/$valgrind_divisor"
    measure "valgrind memcheck" valgrind --tool=memcheck --leak-check=full -q "$plain" "$name" "$small"
    same_checksum "valgrind memcheck"
    row "valgrind memcheck"
    measure "valgrind massif" valgrind --tool=massif --massif-out-file="$work/massif" -q "$plain" "$name" "$small"
    same_checksum "valgrind massif"
    row "valgrind massif"
    rm -f "$work/massif"
    base=$full_base
  else
    echo "valgrind: not installed (apt-get install valgrind)"
  fi
  if [[ -n $heaptrack_added ]]; then
    local line
    line=$(awk -v s="$sites_added" -v h="$heaptrack_added" -v n="$name" 'BEGIN {
      printf "%-9s memlens sites adds %.2f s of CPU, heaptrack %.2f s", n, s, h
      if (h > 0) printf ": %.2f of heaptrack'"'"'s (goal: at most 0.2)", s / h }')
    echo "$line"
    summary+=("$line")
    if [[ -n $preload_added ]]; then
      line=$(awk -v s="$preload_added" -v h="$heaptrack_added" -v n="$name" 'BEGIN {
        printf "%-9s preload sites adds %.2f s of CPU, heaptrack %.2f s", n, s, h
        if (h > 0) printf ": %.2f of heaptrack'"'"'s (goal: at most 0.2)", s / h }')
      echo "$line"
      summary+=("$line")
    fi
  fi
}

echo "CPU s: user + system time of the whole process tree; max RSS: the workload's own peak"
workload map "$map_keys" "keys"
workload document "$document_records" "records"

if ((${#summary[@]})); then
  echo
  printf '%s\n' "${summary[@]}"
fi
