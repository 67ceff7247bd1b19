#!/usr/bin/env bash
# cpu.sh — server CPU time per request (µs), the figure that stays meaningful on a busy machine where
# req/s swings with other jobs.  For each binary given, alternating, BENCH_ROUNDS (3) times: a fresh data
# dir, one client, `salus serve`, one Patient, then wrk (32 connections, BENCH_SECONDS, default 6) with
# bench/read.lua (or BENCH_LUA); the server's utime+stime from /proc before and after, divided by the
# requests wrk completed.  Typical use, audit on vs the benchmark-only build without it:
#   cmake -S . -B build-noaudit -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSALUS_BENCH_NO_AUDIT=ON
#   cmake --build build-noaudit --target salus
#   bench/cpu.sh build/salus build-noaudit/salus
# BENCH_SERVE_ARGS adds settings to `salus serve` (e.g. "--audit.flush_ms 50").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${BENCH_ROUNDS:-3} secs=${BENCH_SECONDS:-6} lua=${BENCH_LUA:-read.lua} port=${BENCH_PORT:-19443}
[ $# -ge 1 ] || { echo "usage: bench/cpu.sh SALUS_BIN [SALUS_BIN...]" >&2; exit 2; }
work=$(mktemp -d /tmp/salus-cpu.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
tick=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
	k=0
	for bin in "$@"; do
		k=$((k + 1))
		d=$work/data-$r-$k; ca=$d/tls/cert.pem; base=https://127.0.0.1:$port
		"$bin" init --data "$d" >/dev/null
		head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
		"$bin" client add --data "$d" --id bench --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
		"$bin" serve --data "$d" --listen "127.0.0.1:$port" --log.level warn --server.rate_limit 0 ${BENCH_SERVE_ARGS:-} >"$work/log" 2>&1 &
		pid=$!
		for _ in $(seq 200); do curl -s --cacert "$ca" -o /dev/null "$base/health/live" && break; sleep 0.05; done
		tok=$(curl -s --cacert "$ca" -u "bench:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
			sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
		id=$(curl -s --cacert "$ca" -H "Authorization: Bearer $tok" -H 'Content-Type: application/fhir+json' \
			-d '{"resourceType":"Patient","active":true,"name":[{"family":"Benchmark","given":["Rea"]}],"birthDate":"1970-01-01"}' \
			"$base/fhir/Patient" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
		[ -n "$id" ] || { echo "cpu.sh: setup failed for $bin" >&2; cat "$work/log" >&2; exit 1; }
		c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		res=$(BENCH_DIR=$here BENCH_TOKEN=$tok BENCH_PATH=/fhir/Patient/$id BENCH_NAME=read BENCH_PRELOAD=1 \
			wrk -t2 -c32 -d"${secs}s" -s "$here/$lua" "$base" | grep '^RESULT')
		c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
		echo "$res" | awk -v b="$bin" -v c0="$c0" -v c1="$c1" -v t="$tick" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
			'{ printf "%-28s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  server CPU %6.1f us/request  load %s\n",
			   b, $3, $4, $5, (c1 - c0) * 1e6 / t / $6, l }'
	done
done
