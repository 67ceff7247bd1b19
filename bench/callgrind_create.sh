#!/usr/bin/env bash
# callgrind_create.sh — server instructions per durable create, a figure that does not move with the
# other jobs on a shared machine.  For each binary given: a fresh data dir, `salus serve` under
# valgrind --tool=callgrind, one warm-up create, counters zeroed (callgrind_control -z), N creates of
# a Patient over BENCH_PARALLEL (16) HTTPS connections (curl --parallel), counters dumped; prints the
# instructions of the dump, the share of the TLS handshakes in it and the instructions per create
# without them.  Needs valgrind.  Usage: bench/callgrind_create.sh SALUS_BIN [SALUS_BIN...]
# Environment: BENCH_CREATES (300), BENCH_PARALLEL (16), BENCH_PORT (18830), BENCH_KEEP=1 keeps the dumps.
set -euo pipefail
n=${BENCH_CREATES:-300} par=${BENCH_PARALLEL:-16} port=${BENCH_PORT:-18830}
[ $# -ge 1 ] || { echo "usage: bench/callgrind_create.sh SALUS_BIN [SALUS_BIN...]" >&2; exit 2; }
command -v callgrind_control >/dev/null || { echo "callgrind_create.sh: valgrind is not installed" >&2; exit 2; }
work=$(mktemp -d /tmp/salus-cg.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
body='{"resourceType":"Patient","active":true,"name":[{"family":"Bench","given":["Cg"]}],"gender":"female","birthDate":"1980-01-02"}'
k=0
for bin in "$@"; do
	k=$((k + 1))
	d=$work/data-$k; ca=$d/tls/cert.pem; base=https://127.0.0.1:$port; out=$work/callgrind-$k.out
	"$bin" init --data "$d" >/dev/null
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
	"$bin" client add --data "$d" --id bench --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
	valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve --data "$d" --listen "127.0.0.1:$port" \
		--log.level warn --server.rate_limit 0 >"$work/log" 2>&1 &
	pid=$!
	for _ in $(seq 600); do curl -s --cacert "$ca" -o /dev/null "$base/health/live" && break; sleep 0.2; done
	tok=$(curl -s --cacert "$ca" -u "bench:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[ -n "$tok" ] || { echo "callgrind_create.sh: setup failed for $bin" >&2; cat "$work/log" >&2; exit 1; }
	curl -s --cacert "$ca" -H "Authorization: Bearer $tok" -H 'Content-Type: application/fhir+json' -d "$body" \
		-o /dev/null "$base/fhir/Patient"
	callgrind_control -z "$pid" >/dev/null 2>&1
	urls=()
	for _ in $(seq "$n"); do urls+=("$base/fhir/Patient"); done
	curl -s --no-progress-meter --parallel --parallel-max "$par" --cacert "$ca" -H "Authorization: Bearer $tok" \
		-H 'Content-Type: application/fhir+json' -d "$body" "${urls[@]}" >"$work/responses"
	ok=$(grep -o '"versionId":"1"' "$work/responses" | wc -l)
	callgrind_control -d "$pid" >/dev/null 2>&1
	sleep 1
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	total=$(sed -n 's/^summary: //p' "$out.1")
	hs=$(callgrind_annotate --inclusive=yes "$out.1" 2>/dev/null | awk '/gnutls_handshake/ && !h { gsub(",", "", $1); h = $1 } END { print h + 0 }')
	echo "$bin created=$ok/$n instructions=$total tls_handshakes=${hs:-0}" \
		"per_create_without_handshakes=$(( (total - ${hs:-0}) / (ok ? ok : 1) ))"
done
