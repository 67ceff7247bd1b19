#!/usr/bin/env bash
# bench/token.sh — token issue rate of POST /auth/token (client credentials) over HTTPS
# keep-alive with wrk, for both client authentication methods:
#   jwt    private_key_jwt (SMART Backend Services): an RS384 client assertion (RSA 2048) per
#          request, each with its own jti, signed beforehand by bench/token_assertions.mjs (the
#          server verifies the signature, claims the jti durably, writes the AuditEvent durably,
#          signs an EdDSA access token)
#   basic  client_secret_basic: one Argon2id verification (t=2, 64 MiB) per request, by design
# Runs BENCH_ROUNDS (3) rounds of each against one server and prints every RESULT line and the
# median req/s of the issued tokens (2xx only: non-2xx are counted apart and must be 0).
#
#   bench/token.sh                    # build/salus, 8 s per run, 32 connections (basic: 4)
#   SALUS_BIN=... BENCH_SECONDS=8 BENCH_ROUNDS=3 BENCH_CONNECTIONS=32 BENCH_BASIC_CONNECTIONS=4 bench/token.sh
#
# BENCH_ASSERTIONS_PER_RUN (default 60000) assertions are signed before each jwt run (they
# expire 280 s later); a run that uses them all up shows non-2xx and must be repeated with more.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
SALUS_BIN=${SALUS_BIN:-$root/build/salus}
SECS=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
BCONNS=${BENCH_BASIC_CONNECTIONS:-4}
THREADS=${BENCH_THREADS:-2}
PORT=${BENCH_PORT:-18445}
PER_RUN=${BENCH_ASSERTIONS_PER_RUN:-60000}
for tool in wrk curl node; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

work=$(mktemp -d /tmp/salus-bench-token.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "${BENCH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
data=$work/data
"$SALUS_BIN" init --data "$data" >/dev/null
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret" # hex: nothing to URL-encode in Basic
"$SALUS_BIN" client add --data "$data" --id bench-basic --scope "system/*.rs" --secret-file "$work/secret" >/dev/null
node "$here/token_assertions.mjs" keygen "$work"
"$SALUS_BIN" client add --data "$data" --id bench-jwt --scope "system/*.rs" --jwks "$work/jwks.json" >/dev/null
"$SALUS_BIN" serve --data "$data" --listen "127.0.0.1:$PORT" --log.level warn --server.rate_limit 0 >"$work/salus.log" 2>&1 &
pid=$!
base=https://127.0.0.1:$PORT
for _ in $(seq 1 300); do
	curl -s --cacert "$data/tls/cert.pem" "$base/health/live" >/dev/null 2>&1 && break
	sleep 0.1
done

results=$work/results
: >"$results"
export BENCH_DIR=$here BENCH_THREADS=$THREADS
export BENCH_BASIC="Basic $(printf 'bench-basic:%s' "$(cat "$work/secret")" | base64 -w0)"
run_wrk() { # name script connections
	BENCH_NAME=$1 wrk -t"$THREADS" -c"$3" -d"${SECS}s" --timeout 10s -s "$here/$2" "$base" | tee -a "$work/wrk.log" |
		grep '^RESULT' | tee -a "$results"
}
echo "token bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $("$SALUS_BIN" version)"
for r in $(seq 1 "$ROUNDS"); do
	echo "== round $r"
	node "$here/token_assertions.mjs" sign "$work" bench-jwt "$base/auth/token" "$PER_RUN" "$work/assertions.txt"
	BENCH_ASSERTIONS=$work/assertions.txt run_wrk jwt token_jwt.lua "$CONNS"
	run_wrk basic token_basic.lua "$BCONNS"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
	$1 == "RESULT" { n = $2; c = ++cnt[n]; ok = $6 ? $3 * ($6 - $7) / $6 : 0; v[n, c] = ok; p50[n, c] = $4; p99[n, c] = $5; bad[n] += $7 + $8 }
	function med(a, n,   k, i, j, t, x) {
		for (i = 1; i <= cnt[n]; i++) x[i] = a[n, i]
		k = cnt[n]
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return k % 2 ? x[(k + 1) / 2] : (x[k / 2] + x[k / 2 + 1]) / 2
	}
	END {
		printf "\nmedian of %d rounds (tokens issued per second = 2xx answers / duration):\n", cnt["jwt"]
		printf "%-6s %14s %9s %9s %10s\n", "method", "tokens/s", "p50 ms", "p99 ms", "non-2xx"
		split("jwt basic", order, " ")
		for (i = 1; i <= 2; i++) { n = order[i]; if (n in cnt) printf "%-6s %14.0f %9.2f %9.2f %10d\n", n, med(v, n), med(p50, n), med(p99, n), bad[n] }
	}' "$results"
