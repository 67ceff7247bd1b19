#!/usr/bin/env bash
# bench/write_http.sh — what search indexing costs a write over HTTPS (issue 5
# item 4: "write throughput with full indexing stays within 25 % of the
# no-index figure", measured like the searches: HTTPS, BENCH_CONNECTIONS=32
# keep-alive connections, 2 wrk threads, on a loaded data directory).
# Two binaries of the same tree: the shipped one ($BENCH_BUILD_DIR, default
# build) and a BENCHMARK-ONLY one whose server writes get no search-index rows
# (cmake -DSALUS_BENCH_NO_INDEX=ON, $BENCH_NOINDEX_BUILD_DIR, default
# build-bench-noindex; built here unless BENCH_NO_BUILD=1).  Each round serves
# the data directory with one binary then the other and runs, for BENCH_SECS:
#   obs      POST /fhir/Observation  (a vital sign of one existing patient)
#   patient  POST /fhir/Patient      (bench/create.lua)
# Creates are durable (acknowledged = fsynced).  Prints each run's req/s, p99 and
# server CPU per request (utime+stime from /proc: the figure that survives a
# busy machine), then the medians of BENCH_ROUNDS (3) and the ratio indexed /
# no-index.
# Data: BENCH_DATA=DIR uses that directory IN PLACE (it grows by every create:
# use a copy); otherwise a fresh one with BENCH_PATIENTS (100) generated
# patients loaded with indexing (`salus gen --years 60`, ~750 resources each).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bix=${BENCH_BUILD_DIR:-$root/build}
bnx=${BENCH_NOINDEX_BUILD_DIR:-$root/build-bench-noindex}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
SECS=${BENCH_SECS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
PORT=${BENCH_PORT:-18663}
TESTS=${BENCH_TESTS:-obs patient}
for tool in wrk curl python3; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done
if [ -z "${BENCH_NO_BUILD:-}" ]; then
	cmake -S "$root" -B "$bnx" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSALUS_BENCH_NO_INDEX=ON >/dev/null 2>&1
	cmake --build "$bix" --target salus >/dev/null
	cmake --build "$bnx" --target salus >/dev/null
fi
"$bix/salus" version | grep -q BENCHMARK && { echo "bench: $bix/salus is a benchmark-only build" >&2; exit 2; }
"$bnx/salus" version | grep -q "NOT indexed" || { echo "bench: $bnx/salus is not a no-index build" >&2; exit 2; }

work=$(mktemp -d /tmp/salus-bench-writehttp.XXXXXX)
salus_pid=
stop() { [ -n "$salus_pid" ] && kill "$salus_pid" 2>/dev/null && wait "$salus_pid" 2>/dev/null; salus_pid=; }
trap 'stop || true; rm -rf "$work"' EXIT
data=${BENCH_DATA:-$work/data}
if [ -z "${BENCH_DATA:-}" ]; then
	"$bix/salus" init --data "$data" >/dev/null
	"$bix/salus" gen --patients "${BENCH_PATIENTS:-100}" --years 60 --ndjson --out "$work/data.ndjson" >/dev/null 2>&1
	"$bix/salus" load --data "$data" "$work/data.ndjson" >/dev/null
	rm -f "$work/data.ndjson"
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
"$bix/salus" client add --data "$data" --id "benchw$$" --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
base=https://127.0.0.1:$PORT
curl_() { curl -sS --cacert "$data/tls/cert.pem" "$@"; }
start() { # binary
	"$1" serve --data "$data" --listen "127.0.0.1:$PORT" --log.level warn --server.rate_limit 0 >"$work/salus.log" 2>&1 &
	salus_pid=$!
	for _ in $(seq 1 600); do
		curl_ -o /dev/null "$base/health/live" 2>/dev/null && break
		kill -0 "$salus_pid" 2>/dev/null || { cat "$work/salus.log" >&2; exit 1; }
		sleep 0.05
	done
	token=$(curl_ -u "benchw$$:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[ -n "$token" ] || { echo "bench: no token" >&2; exit 1; }
}
start "$bix/salus"
pid=$(curl_ -H "Authorization: Bearer $token" "$base/fhir/Patient?_count=1&_sort=_id" |
	python3 -c 'import sys, json; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
total=$(curl_ -H "Authorization: Bearer $token" "$base/fhir/?_summary=count" | python3 -c 'import sys, json; print(json.load(sys.stdin)["total"])')
stop
echo "salus write bench: $(nproc) cores, $total resources, $CONNS connections, $THREADS wrk threads, ${SECS}s x $ROUNDS rounds"
export BENCH_DIR=$here BENCH_PATIENT=$pid
declare -A script=([obs]=create_obs.lua [patient]=create.lua)
for r in $(seq 1 "$ROUNDS"); do
	for mode in index noindex; do
		bin=$bix/salus; [ "$mode" = noindex ] && bin=$bnx/salus
		start "$bin"
		for t in $TESTS; do
			c0=$(awk '{print $14 + $15}' "/proc/$salus_pid/stat")
			res=$(BENCH_TOKEN=$token BENCH_NAME="$t-$mode" wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 10s --latency \
				-s "$here/${script[$t]}" "$base" | grep '^RESULT')
			c1=$(awk '{print $14 + $15}' "/proc/$salus_pid/stat")
			echo "$res" | awk -v c0="$c0" -v c1="$c1" -v t="$(getconf CLK_TCK)" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
				'{ printf "%s %.0f %s\n", $0, $6 ? (c1 - c0) * 1e6 / t / $6 : 0, l }' | tee -a "$work/results"
		done
		stop
	done
done
echo "name req/s p50_ms p99_ms requests non2xx errors server_cpu_us/req load (median of $ROUNDS by req/s)"
for t in $TESTS; do
	for mode in index noindex; do
		grep "^RESULT $t-$mode " "$work/results" | sort -k3 -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2) { print $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
	done
	i=$(grep "^RESULT $t-index " "$work/results" | sort -k3 -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2) { print $3 }')
	x=$(grep "^RESULT $t-noindex " "$work/results" | sort -k3 -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2) { print $3 }')
	awk -v t="$t" -v i="$i" -v x="$x" 'BEGIN { printf "bench: %s create: indexed %.0f/s, no index %.0f/s: indexed = %.0f%% of no-index\n", t, i, x, 100 * i / x }'
done
