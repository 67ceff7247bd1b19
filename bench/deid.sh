#!/usr/bin/env bash
# deid.sh — single-threaded speed of `salus deid scan --spans` on the PhysioNet dev notes (plain text,
# the `text` of each line of ../shared/deid/physionet-dev.ndjson) concatenated to >= 100 MB.
# For each binary given (alternating, DEID_ROUNDS rounds, default 3): /usr/bin/time user+sys seconds,
# MB/s of CPU time (input bytes / (user+sys)), peak RSS; then start-up (an empty input) and the
# median of each binary.  CPU time, not elapsed, so the figure survives a busy machine; the load
# average is printed with it.
#   bench/deid.sh build/salus [other/salus ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gold=${DEID_GOLD:-$here/../../shared/deid/physionet-dev.ndjson}
[ -f "$gold" ] || gold=$here/../../../shared/deid/physionet-dev.ndjson
rounds=${DEID_ROUNDS:-3} mb=${DEID_MB:-100}
[ $# -ge 1 ] || { echo "usage: bench/deid.sh SALUS_BIN [SALUS_BIN...]" >&2; exit 2; }
work=${DEID_WORK:-/tmp/salus-deid-bench}
mkdir -p "$work"
in=$work/phys$mb.txt
if [ ! -s "$in" ]; then
	jq -r '.text' "$gold" >"$work/phys.txt"
	one=$(stat -c %s "$work/phys.txt")
	n=$(( mb * 1000 * 1000 / one + 1 ))
	for _ in $(seq "$n"); do cat "$work/phys.txt"; done >"$in"
fi
size=$(stat -c %s "$in")
printf 'input %s: %.1f MB; load average %s\n' "$in" "$(echo "$size / 1000000" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
declare -A res
for r in $(seq "$rounds"); do
	k=0
	for bin in "$@"; do
		k=$((k + 1))
		/usr/bin/time -f '%U %S %M %e' -o "$work/t" "$bin" deid scan --spans "$in" >/dev/null
		read -r u s m e <"$work/t"
		cpu=$(echo "$u + $s" | bc -l)
		mbs=$(echo "$size / 1000000 / $cpu" | bc -l)
		printf '%-28s round %d: cpu %.2f s (user %s sys %s) elapsed %s s  %.1f MB/s  peak RSS %.1f MB\n' \
			"$bin" "$r" "$cpu" "$u" "$s" "$e" "$mbs" "$(echo "$m / 1024" | bc -l)"
		res[$k]="${res[$k]:-} $mbs"
	done
done
k=0
for bin in "$@"; do
	k=$((k + 1))
	med=$(echo "${res[$k]}" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	: >"$work/empty"
	/usr/bin/time -f '%e %U %S %M' -o "$work/t0" "$bin" deid scan --spans "$work/empty" >/dev/null
	read -r e0 u0 s0 m0 <"$work/t0"
	printf '%-28s median %.1f MB/s of CPU; start-up (empty input) %s s elapsed, %s s CPU, %.1f MB RSS\n' \
		"$bin" "$med" "$e0" "$(echo "$u0 + $s0" | bc -l)" "$(echo "$m0 / 1024" | bc -l)"
done
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
