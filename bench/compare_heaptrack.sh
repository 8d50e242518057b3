#!/usr/bin/env bash
# Runs one program under libmemlens_preload.so (JSON report, leaks at exit) and once under
# heaptrack, and prints the allocation calls, peak bytes and leaked bytes of both side by side
# with the difference.
# Usage: bench/compare_heaptrack.sh build-dir [--mode counters|sites] program [args...]
#        bench/compare_heaptrack.sh build-dir [--mode counters|sites] --tinyxml2 source-dir
# With --tinyxml2 the script builds tinyxml2's own test program (g++ -O2 -g xmltest.cpp
# tinyxml2.cpp, into a temporary folder) from a source tree the user names, e.g. one from
# `git clone https://github.com/leethomason/tinyxml2`, and runs it in that tree, where it reads
# resources/ and writes resources/out/.
#
# Like with like:
# - memlens's figures are the "malloc" and "heap" domains of its JSON report together (the
#   malloc family and operator new / delete): heaptrack counts neither mmap nor CPython's
#   domains. Calls are their allocs; leaked bytes their current bytes at exit.
# - The peak is the report's "totals" peak, every domain together; it equals the malloc+heap peak
#   when the "mmap" domain's peak is 0, and the script says so when it is not.
# - heaptrack's figures are computed exactly from its data file (heaptrack_print rounds them):
#   calls are its allocation events ('+' lines), the peak the highest sum of live sizes, leaked
#   bytes what is live at its end. heaptrack_print's rounded figures are printed beside them.
# - heaptrack calls libstdc++'s __gnu_cxx::__freeres at exit, which frees the exception emergency
#   pool that libstdc++ allocates before main and never frees otherwise; memlens reports that
#   pool as live (a suppressed leak). The "leaked, pool kept" row adds its size back to
#   heaptrack's figure when the last block heaptrack saw freed is the first one allocated.
# - Calls that only one tool counts (bench/README.md, "Preload mode", has the measurements):
#   heaptrack 1.4 does not see memalign and pvalloc (memlens counts them, pvalloc's size rounded
#   up to whole pages as glibc rounds it), nor the free of realloc(p, 0), which leaves p's size
#   leaked in heaptrack's figures; memlens counts a realloc that fails as one more allocation
#   (sources/malloc.hpp), heaptrack counts nothing.
set -euo pipefail

usage="usage: $0 build-dir [--mode counters|sites] (program [args...] | --tinyxml2 source-dir)"
(($# >= 2)) || { echo "$usage" >&2; exit 2; }
build=$1
shift
mode=counters
if [[ $1 == --mode ]]; then
  (($# >= 3)) || { echo "$usage" >&2; exit 2; }
  mode=$2
  shift 2
fi
preload=${MEMLENS_PRELOAD_LIBRARY:-$build/libmemlens_preload.so}
[[ -f $preload ]] || { echo "missing $preload: build the memlens_preload target first" >&2; exit 2; }
# The program runs in another folder with --tinyxml2.
preload=$(cd "$(dirname "$preload")" && pwd)/$(basename "$preload")
for tool in heaptrack heaptrack_print zstdcat python3 perl; do
  command -v "$tool" >/dev/null || { echo "needs $tool on PATH" >&2; exit 2; }
done

while read -r name; do unset "$name"; done < <(compgen -e | grep '^MEMLENS_' || true)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run_dir=$PWD
if [[ $1 == --tinyxml2 ]]; then
  (($# == 2)) || { echo "$usage" >&2; exit 2; }
  source_dir=$(cd "$2" && pwd)
  [[ -f $source_dir/xmltest.cpp && -d $source_dir/resources ]] ||
    { echo "$source_dir holds no xmltest.cpp and resources/" >&2; exit 2; }
  "${CXX:-g++}" -O2 -g -o "$work/xmltest" "$source_dir/xmltest.cpp" "$source_dir/tinyxml2.cpp"
  mkdir -p "$source_dir/resources/out"
  run_dir=$source_dir
  set -- "$work/xmltest"
fi

# Both runs in the same folder with the same arguments; the program's output is kept aside.
(cd "$run_dir" && LD_PRELOAD=$preload MEMLENS_MODE=$mode MEMLENS_LEAKS_AT_EXIT=1 \
  MEMLENS_OUTPUT="$work/memlens.json" "$@" >"$work/memlens.out" 2>&1) || echo "note: the program exited with $? under memlens"
(cd "$run_dir" && heaptrack -o "$work/heaptrack" "$@" >"$work/heaptrack.out" 2>&1) || echo "note: the program exited with $? under heaptrack"
data=$(compgen -G "$work/heaptrack.*z*" | head -n1 || true)
[[ -n $data && -f $work/memlens.json ]] || { echo "a run wrote no data" >&2; tail -n 20 "$work"/*.out >&2; exit 1; }

read -r m_calls m_peak m_leaked m_mmap_peak < <(python3 - "$work/memlens.json" <<'EOF'
import json, sys
report = json.load(open(sys.argv[1]))
domains = {d["name"]: d for d in report["domains"]}
counted = [domains[n] for n in ("malloc", "heap") if n in domains]
print(sum(d["allocs"] for d in counted), report["totals"]["peak"],
      sum(d["current"] for d in counted), domains.get("mmap", {}).get("peak", 0))
EOF
)

# heaptrack's data file: "a <size> <trace>" declares an allocation kind (hex), "+ <kind>" is an
# allocation and "- <kind>" a free of that kind. The last figure is the size of the last block
# freed when it is of the kind of the first block allocated: the emergency pool that libstdc++
# allocates first and heaptrack's __freeres frees last.
read -r h_calls h_peak h_leaked h_pool < <(decompress() { case $data in *.zst) zstdcat "$1" ;; *) zcat "$1" ;; esac; }
  decompress "$data" | perl -ne '
    if (/^a (\w+) /) { push @size, hex $1 }
    elsif (/^\+ (\w+)/) { $calls++; $first //= hex $1; $live += $size[hex $1]; $peak = $live if $live > $peak }
    elsif (/^- (\w+)/) { $last = hex $1; $live -= $size[$last] }
    END { printf "%d %d %d %d\n", $calls, $peak, $live, (defined $last && $last == $first ? $size[$last] : 0) }')
printed=$(heaptrack_print -f "$data" 2>/dev/null |
  grep -E '^(calls to allocation functions|peak heap memory consumption|total memory leaked)' |
  sed -E 's/ \([0-9.]+\/s\)//' | paste -sd ';' -)

echo "program: $* (in $run_dir)"
echo "memlens: libmemlens_preload.so, $mode mode, \"malloc\" + \"heap\" domains"
echo "heaptrack_print says: $printed"
printf '%-24s %14s %14s %12s\n' "figure" "memlens" "heaptrack" "difference"
line() { awk -v n="$1" -v m="$2" -v h="$3" 'BEGIN { printf "%-24s %14d %14d %+12d\n", n, m, h, m - h }'; }
line "allocation calls" "$m_calls" "$h_calls"
line "peak bytes" "$m_peak" "$h_peak"
line "leaked bytes" "$m_leaked" "$h_leaked"
if ((h_pool > 0)); then
  line "leaked, pool kept" "$m_leaked" "$((h_leaked + h_pool))"
  echo "(heaptrack freed the first block allocated, $h_pool bytes, last: libstdc++'s emergency pool)"
fi
((m_mmap_peak == 0)) || echo "note: the program mapped pages itself (\"mmap\" peak $m_mmap_peak bytes): memlens's peak counts them, heaptrack's does not; the peaks are not like with like"
