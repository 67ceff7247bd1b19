#!/usr/bin/env bash
# bench/index_cost.sh — the write cost of search indexing (issue 5 item 4):
# `salus load` of the same N generated resources (BENCH_WRITE, default 20000;
# `salus gen --patients 30 --years 60`) into fresh data directories, with and
# without `--no-index`, 3 rounds alternating binaries and modes.  Prints each
# run's wall rate and CPU time (user+sys) per resource — the figure that
# survives a busy machine — and the medians.
# Usage: bench/index_cost.sh SALUS_BIN [SALUS_BIN...]
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: bench/index_cost.sh SALUS_BIN [SALUS_BIN...]" >&2; exit 2; }
N=${BENCH_WRITE:-20000}
work=$(mktemp -d /tmp/salus-bench-ixcost.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$1" gen --patients 30 --years 60 --ndjson --out "$work/all.ndjson" >/dev/null 2>&1
head -n "$N" "$work/all.ndjson" >"$work/write.ndjson"
n=$(wc -l <"$work/write.ndjson")
for r in 1 2 3; do
	for bin in "$@"; do
		for mode in index noindex; do
			rm -rf "$work/d"
			"$bin" init --data "$work/d" >/dev/null
			flag=; [ "$mode" = noindex ] && flag=--no-index
			a=$(date +%s.%N)
			/usr/bin/time -f "%U %S" -o "$work/t" "$bin" load --data "$work/d" $flag "$work/write.ndjson" >/dev/null
			b=$(date +%s.%N)
			read -r u s <"$work/t"
			awk -v bin="$bin" -v m="$mode" -v n="$n" -v a="$a" -v b="$b" -v u="$u" -v s="$s" \
				-v l="$(cut -d' ' -f1 /proc/loadavg)" \
				'BEGIN { printf "%s %s %.0f %.1f %s\n", bin, m, n / (b - a), (u + s) * 1e6 / n, l }' | tee -a "$work/runs"
		done
	done
done
echo "binary mode: median resources/s, median CPU us per resource (3 runs)"
for bin in "$@"; do
	for mode in index noindex; do
		rate=$(awk -v b="$bin" -v m="$mode" '$1 == b && $2 == m { print $3 }' "$work/runs" | sort -n | sed -n 2p)
		cpu=$(awk -v b="$bin" -v m="$mode" '$1 == b && $2 == m { print $4 }' "$work/runs" | sort -n | sed -n 2p)
		echo "$bin $mode: $rate/s, $cpu us"
	done
done
