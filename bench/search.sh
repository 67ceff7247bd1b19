#!/usr/bin/env bash
# bench/search.sh — FHIR search at scale (docs/search.md): generate synthetic
# patients (`salus gen --ndjson`), load them straight into a fresh store with
# indexing (`salus load`), serve over HTTPS and measure five searches with wrk
# (BENCH_CONNECTIONS=32 keep-alive connections, 2 threads, BENCH_SECS each,
# BENCH_ROUNDS runs; the median run by req/s is reported):
#   obs      Observation?patient=X&code=LOINC&date=ge...&_sort=-date
#   name     Patient?name=<3-letter prefix>
#   ident    Patient?identifier=system|value
#   chain    Observation?subject:Patient.name=<family>&code=LOINC
#   revinc   Patient?_id=X&_revinclude=Encounter:subject
# Usage: bench/search.sh [PATIENTS]   (default 1000).  SALUS_BIN names the
# binary (default ./build/salus); BENCH_KEEP=1 keeps the work directory;
# BENCH_DATA=DIR reuses a loaded data directory (skips generation and load).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SALUS_BIN=${SALUS_BIN:-$here/../build/salus}
PATIENTS=${1:-1000}
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
	"$SALUS_BIN" gen --patients "$PATIENTS" --ndjson --out "$work/data.ndjson" >/dev/null 2>&1
	t1=$(date +%s.%N)
	"$SALUS_BIN" load --data "$data" "$work/data.ndjson"
	t2=$(date +%s.%N)
	n=$(wc -l <"$work/data.ndjson")
	awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "bench: %d resources generated in %.1f s, loaded with indexing in %.1f s (%.0f/s)\n", n, b - a, c - b, n / (c - b) }'
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
"$SALUS_BIN" client add --data "$data" --id "bench$$" --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
"$SALUS_BIN" serve --data "$data" --listen "127.0.0.1:$PORT" --log.level warn --server.rate_limit 0 >"$work/salus.log" 2>&1 &
salus_pid=$!
base=https://127.0.0.1:$PORT
curl_() { curl -sS --cacert "$data/tls/cert.pem" "$@"; }
for _ in $(seq 1 600); do
	curl_ -o /dev/null "$base/health/live" 2>/dev/null && break
	kill -0 "$salus_pid" 2>/dev/null || { cat "$work/salus.log" >&2; exit 1; }
	sleep 0.05
done
token=$(curl_ -u "bench$$:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
	sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "bench: no token" >&2; exit 1; }

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
for name in obs name ident chain revinc; do
	path=${Q[$name]}
	n=$(curl_ -H "Authorization: Bearer $token" "$base$path" | python3 -c 'import sys, json; b = json.load(sys.stdin); print(len(b.get("entry", [])), b.get("total"))')
	echo "query $name: $path (entries, total: $n)"
	for r in $(seq 1 "$ROUNDS"); do
		BENCH_NAME=$name BENCH_PATH=$path wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 10s --latency \
			-s "$here/read.lua" "$base" | grep '^RESULT' >>"$work/results"
	done
done
echo "name req/s p50_ms p99_ms requests non2xx errors (median of $ROUNDS by req/s)"
for name in obs name ident chain revinc; do
	grep "^RESULT $name " "$work/results" | sort -k3 -n | awk -v r="$ROUNDS" 'NR == int((r + 1) / 2) { print $2, $3, $4, $5, $6, $7, $8 }'
done
