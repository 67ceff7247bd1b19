#!/usr/bin/env bash
# bench/search.sh — FHIR search at scale (docs/search.md): generate synthetic
# patients (`salus gen --ndjson --years BENCH_YEARS`, default 60: ~750
# resources a patient, so 1333 patients ~ 1M resources), load them straight
# into a fresh store with indexing (`salus load`), serve over HTTPS and measure
# five searches with wrk (BENCH_CONNECTIONS=32 keep-alive connections, 2
# threads, BENCH_SECS each, BENCH_ROUNDS runs; the median run by req/s is
# reported, with the server's CPU time per request (utime+stime from /proc
# over the run / requests: the figure that survives a busy machine)):
#   obs      Observation?patient=X&code=LOINC&date=ge...&_sort=-date
#   name     Patient?name=<3-letter prefix>
#   ident    Patient?identifier=system|value
#   chain    Observation?subject:Patient.name=<family>&code=LOINC
#   revinc   Patient?_id=X&_revinclude=Encounter:subject
# Usage: bench/search.sh [PATIENTS]   (default 1333).  SALUS_BIN names the
# binary (default ./build/salus); BENCH_KEEP=1 keeps the work directory;
# BENCH_DATA=DIR reuses a loaded data directory (skips generation and load);
# BENCH_QUERIES="obs name" runs only those.  BENCH_AB="BIN1 BIN2" compares
# binaries: each round serves the data with each in turn (one at a time) and
# runs every query once (after 2 s unmeasured); the medians per binary are printed.
# Write cost of indexing: BENCH_WRITE=N (default 20000; 0: skip) loads the
# first N generated resources into two fresh stores, with and without
# `--no-index`, and prints both rates and their ratio (skipped with BENCH_DATA).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SALUS_BIN=${SALUS_BIN:-$here/../build/salus}
PATIENTS=${1:-1333}
YEARS=${BENCH_YEARS:-60}
WRITE_N=${BENCH_WRITE:-20000}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
PORT=${BENCH_PORT:-18643}
for tool in wrk curl python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
work=$(mktemp -d /tmp/salus-bench-search.XXXXXX)
salus_pid=
cleanup() {
	[ -n "$salus_pid" ] && kill "$salus_pid" 2>/dev/null && wait "$salus_pid" 2>/dev/null || true
	if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; else echo "bench: kept $work"; fi
}
trap cleanup EXIT

data=${BENCH_DATA:-$work/data}
if [ -z "${BENCH_DATA:-}" ]; then
	"$SALUS_BIN" init --data "$data" >/dev/null
	t0=$(date +%s.%N)
	"$SALUS_BIN" gen --patients "$PATIENTS" --years "$YEARS" --ndjson --out "$work/data.ndjson" >/dev/null 2>&1
	t1=$(date +%s.%N)
	"$SALUS_BIN" load --data "$data" "$work/data.ndjson"
	t2=$(date +%s.%N)
	n=$(wc -l <"$work/data.ndjson")
	awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { printf "bench: %d resources generated in %.1f s, loaded with indexing in %.1f s (%.0f/s), load %s\n", n, b - a, c - b, n / (c - b), l }'
	if [ "$WRITE_N" -gt 0 ]; then
		# the write cost of indexing: the same resources into fresh stores, indexed and not, alternating
		head -n "$WRITE_N" "$work/data.ndjson" >"$work/write.ndjson"
		for r in 1 2 3; do
			for mode in index noindex; do
				rm -rf "$work/w"
				"$SALUS_BIN" init --data "$work/w" >/dev/null
				flag=; [ "$mode" = noindex ] && flag=--no-index
				a=$(date +%s.%N)
				"$SALUS_BIN" load --data "$work/w" $flag "$work/write.ndjson" >/dev/null
				b=$(date +%s.%N)
				awk -v m="$mode" -v n="$WRITE_N" -v a="$a" -v b="$b" 'BEGIN { printf "%s %.0f\n", m, n / (b - a) }' >>"$work/write"
			done
		done
		rm -rf "$work/w"
		# the median of each mode's three rates (sort, not gawk's asort: Debian's awk is mawk)
		i=$(awk '$1 == "index" { print $2 }' "$work/write" | sort -n | sed -n 2p)
		x=$(awk '$1 == "noindex" { print $2 }' "$work/write" | sort -n | sed -n 2p)
		awk -v i="$i" -v x="$x" -v n="$WRITE_N" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
			printf "bench: write %s resources: indexed %.0f/s, no index %.0f/s (median of 3): indexed = %.0f%% of no-index, load %s\n", n, i, x, 100 * i / x, l }'
	fi
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
"$SALUS_BIN" client add --data "$data" --id "bench$$" --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
base=https://127.0.0.1:$PORT
curl_() { curl -sS --cacert "$data/tls/cert.pem" "$@"; }
# serve BIN: start BIN on the data directory, wait until it answers, take a token
serve() {
	"$1" serve --data "$data" --listen "127.0.0.1:$PORT" --log.level warn --server.rate_limit 0 >"$work/salus.log" 2>&1 &
	salus_pid=$!
	for _ in $(seq 1 600); do
		curl_ -o /dev/null "$base/health/live" 2>/dev/null && break
		kill -0 "$salus_pid" 2>/dev/null || { cat "$work/salus.log" >&2; exit 1; }
		sleep 0.05
	done
	token=$(curl_ -u "bench$$:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[ -n "$token" ] || { echo "bench: no token" >&2; exit 1; }
}
unserve() {
	kill "$salus_pid" 2>/dev/null && wait "$salus_pid" 2>/dev/null || true
	salus_pid=
}
serve "$SALUS_BIN"

# pick the subjects of the queries from the data itself
get() { curl_ -H "Authorization: Bearer $token" "$base/fhir/$1"; }
read -r pid family ident_sys ident_val < <(get 'Patient?_count=1&_sort=_id' | python3 -c '
import sys, json
p = json.load(sys.stdin)["entry"][0]["resource"]
i = p["identifier"][0]
print(p["id"], p["name"][0]["family"], i.get("system", ""), i["value"])')
code=$(get "Observation?patient=$pid&_count=1" | python3 -c '
import sys, json
print(json.load(sys.stdin)["entry"][0]["resource"]["code"]["coding"][0]["code"])')
prefix=${family:0:3}
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
declare -A Q=(
	[obs]="/fhir/Observation?patient=$pid&code=$code&date=ge2000-01-01&_sort=-date"
	[name]="/fhir/Patient?name=$(enc "$prefix")"
	[ident]="/fhir/Patient?identifier=$(enc "$ident_sys")|$(enc "$ident_val")"
	[chain]="/fhir/Observation?subject:Patient.name=$(enc "$family")&code=$code"
	[revinc]="/fhir/Patient?_id=$pid&_revinclude=Encounter:subject"
)
total=$(get '?_summary=count' | python3 -c 'import sys, json; print(json.load(sys.stdin)["total"])')
echo "salus search bench: $(nproc) cores, $total resources, $CONNS connections, $THREADS wrk threads, ${SECS}s x $ROUNDS rounds, $("$SALUS_BIN" version)"
export BENCH_DIR=$here BENCH_TOKEN=$token
QUERIES=${BENCH_QUERIES:-obs name ident chain revinc}
# one wrk run of query $1 against the running server: a RESULT line with its CPU per request and the load
measure() {
	local c0 c1 res
	c0=$(awk '{print $14 + $15}' "/proc/$salus_pid/stat")
	res=$(BENCH_NAME=$1 BENCH_PATH=${Q[$1]} wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 10s --latency \
		-s "$here/read.lua" "$base" | grep '^RESULT')
	c1=$(awk '{print $14 + $15}' "/proc/$salus_pid/stat")
	echo "$res" | awk -v c0="$c0" -v c1="$c1" -v t="$(getconf CLK_TCK)" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
		'{ printf "%s %.0f %s\n", $0, $6 ? (c1 - c0) * 1e6 / t / $6 : 0, l }'
}
if [ -n "${BENCH_AB:-}" ]; then
	# A/B: the binaries of BENCH_AB in turn on the same data, one server at a time, each query once a
	# round; the median of the rounds per binary (the CPU column is the comparison on a busy machine)
	unserve
	for r in $(seq 1 "$ROUNDS"); do
		i=0
		for bin in $BENCH_AB; do
			i=$((i + 1))
			serve "$bin"
			export BENCH_TOKEN=$token
			for name in $QUERIES; do
				# a fresh server's reader connections start cold: 2 s unmeasured first
				BENCH_NAME=$name BENCH_PATH=${Q[$name]} wrk -t"$THREADS" -c"$CONNS" -d2s -s "$here/read.lua" "$base" >/dev/null
				measure "$name" | sed "s/^RESULT /RESULT $i:/" >>"$work/results"
			done
			unserve
		done
	done
	echo "bin:name req/s p50_ms p99_ms requests non2xx errors server_cpu_us/req load (median of $ROUNDS by req/s)"
	i=0
	for bin in $BENCH_AB; do
		i=$((i + 1))
		echo "$i = $bin"
		for name in $QUERIES; do
			grep "^RESULT $i:$name " "$work/results" | sort -k3 -n |
				awk -v r="$ROUNDS" 'NR == int((r + 1) / 2) { print $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
		done
	done
	exit 0
fi
for name in $QUERIES; do
	path=${Q[$name]}
	n=$(curl_ -H "Authorization: Bearer $token" "$base$path" | python3 -c 'import sys, json; b = json.load(sys.stdin); print(len(b.get("entry", [])), b.get("total"))')
	echo "query $name: $path (entries, total: $n)"
	for r in $(seq 1 "$ROUNDS"); do
		measure "$name" >>"$work/results"
	done
done
echo "name req/s p50_ms p99_ms requests non2xx errors server_cpu_us/req load (median of $ROUNDS by req/s)"
for name in $QUERIES; do
	grep "^RESULT $name " "$work/results" | sort -k3 -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2) { print $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
done
