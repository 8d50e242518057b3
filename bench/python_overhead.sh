#!/usr/bin/env bash
# What memlens adds to a Python workload run by Debian's /usr/bin/python3, beside what tracemalloc
# adds at 1 and at 25 frames, all in the same run: the CPU time (user + system) of each setting,
# its slowdown over the plain run, its peak RSS, and sites mode's slowdown as a fraction of
# tracemalloc's at the same depth (the goals: counters under 5%, sampled under 10%, sites at most
# a third).
# memlens runs as the extension module tests/python builds (import memlens installs the hooks on
# the three allocator domains); MEMLENS_MODE and MEMLENS_PYTHON_DEPTH choose what it records.
# Usage: bench/python_overhead.sh [build-dir] [runs]   (each figure is the median of `runs`, default 5)
set -euo pipefail

build=${1:-build}
runs=${2:-5}
python=/usr/bin/python3
module_dir=$build/tests/python_extension
ls "$module_dir"/memlens*.so >/dev/null 2>&1 ||
  { echo "missing $module_dir/memlens*.so: build the memlens_python_extension target first" >&2; exit 2; }
gnu_time=/usr/bin/time
"$gnu_time" -f '%U' true >/dev/null 2>&1 || { echo "needs GNU time at $gnu_time (apt-get install time)" >&2; exit 2; }
while read -r name; do unset "$name"; done < <(compgen -e | grep '^MEMLENS_' || true)

# The named workload: dicts, lists, strings and a JSON round trip, about a second plain.
workload=$(mktemp)
trap 'rm -f "$workload"' EXIT
cat >"$workload" <<'PY'
import json, os, sys
if os.environ.get("WITH_MEMLENS"):
    import memlens
records = []
for i in range(60000):
    records.append({"id": i, "name": "item-%d" % i, "tags": ["t%d" % (i % 7), "u%d" % (i % 11)],
                    "score": i * 0.5, "parts": list(range(i % 9))})
text = json.dumps(records)
back = json.loads(text)
words = " ".join(r["name"] for r in back).split()
index = {w: n for n, w in enumerate(words)}
print(len(text), len(index), file=sys.stderr)
PY

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# Median CPU seconds and median peak RSS (MiB) of `runs` runs of: env ASSIGNMENTS... python ARGS...
measure() {
  local times=() sizes=() line
  for ((i = 0; i < runs; i++)); do
    line=$("$gnu_time" -f '%U %S %M' env "$@" 2>&1 >/dev/null | tail -n1)
    times+=("$(awk '{ print $1 + $2 }' <<<"$line")")
    sizes+=("$(awk '{ printf "%.1f", $3 / 1024 }' <<<"$line")")
  done
  echo "$(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${sizes[@]}" | median)"
}

echo "python: $("$python" --version 2>&1); medians of $runs runs: CPU seconds, slowdown, peak RSS"
read -r plain plain_rss < <(measure "$python" "$workload")
printf '%-26s %8.3f s  %7s  %7.1f MiB\n' "plain" "$plain" "" "$plain_rss"
slowdown() { awk -v t="$1" -v p="$plain" 'BEGIN { printf "%.1f", (t / p - 1) * 100 }'; }
declare -A seconds
settings=(
  "memlens counters|WITH_MEMLENS=1 PYTHONPATH=$module_dir MEMLENS_MODE=counters"
  "memlens sampled|WITH_MEMLENS=1 PYTHONPATH=$module_dir MEMLENS_MODE=sampled"
  "memlens sites, 1 frame|WITH_MEMLENS=1 PYTHONPATH=$module_dir MEMLENS_MODE=sites MEMLENS_PYTHON_DEPTH=1"
  "memlens sites, 25 frames|WITH_MEMLENS=1 PYTHONPATH=$module_dir MEMLENS_MODE=sites MEMLENS_PYTHON_DEPTH=25"
  "tracemalloc, 1 frame|PYTHONTRACEMALLOC=1"
  "tracemalloc, 25 frames|PYTHONTRACEMALLOC=25"
)
for entry in "${settings[@]}"; do
  name=${entry%%|*}
  read -r -a assignments <<<"${entry#*|}"
  read -r cpu rss < <(measure "${assignments[@]}" "$python" "$workload")
  seconds[$name]=$cpu
  printf '%-26s %8.3f s  %+6s%%  %7.1f MiB\n' "$name" "$cpu" "$(slowdown "$cpu")" "$rss"
done
for depth in 1 25; do
  frames=frames
  [[ $depth == 1 ]] && frames=frame
  awk -v s="${seconds["memlens sites, $depth $frames"]}" -v t="${seconds["tracemalloc, $depth $frames"]}" \
    -v p="$plain" -v d="$depth" 'BEGIN {
      ratio = (t > p) ? (s - p) / (t - p) : 0
      printf "sites mode adds %.2f of what tracemalloc adds at %d frame%s (goal: at most 0.33)\n", ratio, d, d == 1 ? "" : "s" }'
done
