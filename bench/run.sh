#!/usr/bin/env bash
# bench/run.sh — reproducible throughput/latency benchmark of salus against an
# nginx ceiling, over HTTPS keep-alive with wrk.
#
#   bench/run.sh                       # uses build/salus, 10 s per test
#   SALUS_BIN=build-it/salus BENCH_SECONDS=5 bench/run.sh
#
# Builds nothing.  Makes a fresh data dir, registers a client, starts salus on
# loopback, gets a token, preloads resources, then measures with wrk
# (BENCH_CONNECTIONS=32 keep-alive connections, BENCH_THREADS=2 wrk threads):
#   read    GET /fhir/Patient/{id}            (one stored resource)
#   create  POST /fhir/Patient                (durable: acknowledged = fsynced)
#   update  PUT /fhir/Patient/{id}            (a different preloaded id per request)
#   batch   POST /fhir, 100-entry batch Bundle (skipped while /fhir answers 405)
#   nginx   the same read against nginx serving that resource's JSON as a static
#           file over TLS (same curve, TLS versions and wrk settings): the ceiling.
# Prints req/s, p50/p99 latency, the salus/nginx read ratio, and salus RSS idle and
# peak (VmRSS / VmHWM).  RESULT lines are machine-readable:
#   RESULT name req_per_s p50_ms p99_ms requests non2xx socket_errors
# Environment: SALUS_BIN, BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_PRELOAD (1000), BENCH_PORT (18443), BENCH_NGINX_PORT (18444), BENCH_KEEP=1 keeps the dir,
# BENCH_READ_SCOPE (the read test's token scopes; default: the bench client's system/*.cruds).
#
# Audit on vs off (issue 7), in ONE run:
#   BENCH_AUDIT_COMPARE=1 bench/run.sh
# builds two binaries from this tree — the shipped one ($BENCH_BUILD_DIR, default build-bench) and a
# BENCHMARK-ONLY one with the audit phase compiled out (cmake -DSALUS_BENCH_NO_AUDIT=ON,
# $BENCH_NOAUDIT_BUILD_DIR, default build-bench-noaudit) — then runs read and create against each,
# alternating A/B, BENCH_ROUNDS (3) times, and prints the median req/s, p50/p99 and the ratio
# audit on / audit off.  Set BENCH_NO_BUILD=1 to use binaries already built there.
# Also (used by that mode, usable alone): BENCH_TESTS (default "read create update batch") selects
# salus tests, BENCH_NGINX=0 skips the nginx ceiling, BENCH_RESULTS_OUT=FILE appends the RESULT lines.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

# ---- audit on vs off: two builds, alternating runs, medians ---------------------------------------
if [ "${BENCH_AUDIT_COMPARE:-}" = 1 ]; then
	bon=${BENCH_BUILD_DIR:-$root/build-bench}
	boff=${BENCH_NOAUDIT_BUILD_DIR:-$root/build-bench-noaudit}
	rounds=${BENCH_ROUNDS:-3}
	if [ -z "${BENCH_NO_BUILD:-}" ]; then
		cmake -S "$root" -B "$bon" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSALUS_BENCH_NO_AUDIT=OFF >/dev/null
		cmake -S "$root" -B "$boff" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSALUS_BENCH_NO_AUDIT=ON >/dev/null 2>&1
		cmake --build "$bon" -j "$(nproc)" --target salus >/dev/null
		cmake --build "$boff" -j "$(nproc)" --target salus >/dev/null
	fi
	"$bon/salus" version | grep -q BENCHMARK && { echo "bench: $bon/salus is a no-audit build" >&2; exit 2; }
	"$boff/salus" version | grep -q BENCHMARK || { echo "bench: $boff/salus is not a no-audit build" >&2; exit 2; }
	cmp_out=$(mktemp /tmp/salus-bench-audit.XXXXXX)
	trap 'rm -f "$cmp_out"' EXIT
	one() { # label binary
		echo "== round $r: $1 ($2)"
		BENCH_AUDIT_COMPARE= SALUS_BIN=$2 BENCH_TESTS="read create" BENCH_NGINX=0 BENCH_RESULTS_OUT=$cmp_out.cur \
			"$here/run.sh" | grep -v '^RESULT' || true
		sed "s/^RESULT /RESULT $1-/" "$cmp_out.cur" >>"$cmp_out"
		rm -f "$cmp_out.cur"
	}
	for r in $(seq 1 "$rounds"); do
		if [ $((r % 2)) = 1 ]; then one audit "$bon/salus"; one noaudit "$boff/salus"
		else one noaudit "$boff/salus"; one audit "$bon/salus"; fi
	done
	grep '^RESULT' "$cmp_out"
	awk '
		function med(name, col,   k, v, i, j, t) {
			k = 0
			for (i = 1; i <= cnt[name]; i++) v[++k] = val[name, i, col]
			for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
			return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
		}
		$1 == "RESULT" { n = $2; c = ++cnt[n]; val[n, c, 1] = $3; val[n, c, 2] = $4; val[n, c, 3] = $5; bad += $7 + $8 }
		END {
			printf "\naudit on vs off, median of %d rounds (same run, alternating):\n", cnt["audit-read"]
			printf "%-10s %12s %9s %9s %12s %9s %9s %8s\n", "test", "on req/s", "p50 ms", "p99 ms", "off req/s", "p50 ms", "p99 ms", "on/off"
			split("read create", order, " ")
			for (i = 1; i <= 2; i++) {
				t = order[i]; on = "audit-" t; off = "noaudit-" t
				if (!(on in cnt) || !(off in cnt)) continue
				printf "%-10s %12.0f %9.2f %9.2f %12.0f %9.2f %9.2f %8.2f\n", t, med(on, 1), med(on, 2), med(on, 3),
					med(off, 1), med(off, 2), med(off, 3), med(on, 1) / med(off, 1)
			}
			if ("audit-read" in cnt) printf "audited events/s under read load (one per request): %.0f\n", med("audit-read", 1)
			if (bad) { printf "WARNING: %d failed requests\n", bad; exit 1 }
		}' "$cmp_out"
	exit
fi
SALUS_BIN=${SALUS_BIN:-$root/build/salus}
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
PRELOAD=${BENCH_PRELOAD:-1000}
PORT=${BENCH_PORT:-18443}
NGINX_PORT=${BENCH_NGINX_PORT:-18444}

for tool in wrk nginx openssl curl; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install wrk nginx-light openssl curl)" >&2; exit 2; }
done
[ -x "$SALUS_BIN" ] || { echo "bench: no salus binary at $SALUS_BIN (build it, or set SALUS_BIN)" >&2; exit 2; }

work=$(mktemp -d /tmp/salus-bench.XXXXXX)
data=$work/data
salus_pid=
nginx_pid=
cleanup() {
	[ -n "$salus_pid" ] && kill "$salus_pid" 2>/dev/null && wait "$salus_pid" 2>/dev/null || true
	[ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
	if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$work"; else echo "bench: kept $work"; fi
}
trap cleanup EXIT

base=https://127.0.0.1:$PORT
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mem() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$salus_pid/status"; }

# ---- salus: fresh data dir, a client, serve, token --------------------------------------------
"$SALUS_BIN" init --data "$data" >/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
"$SALUS_BIN" client add --data "$data" --id bench --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
# one load generator on loopback is not an abusive client: no per-address rate limit
limit=()
grep -q '^rate_limit' "$data/salus.ini" && limit=(--server.rate_limit 0)
"$SALUS_BIN" serve --data "$data" --listen "127.0.0.1:$PORT" --log.level warn "${limit[@]}" >"$work/salus.log" 2>&1 &
salus_pid=$!
cacert=$data/tls/cert.pem
curl_() { curl -sS --cacert "$cacert" "$@"; }
for _ in $(seq 1 600); do
	curl_ -o /dev/null "$base/health/live" 2>/dev/null && break
	kill -0 "$salus_pid" 2>/dev/null || { cat "$work/salus.log" >&2; exit 1; }
	sleep 0.05
done
token=$(curl_ -u "bench:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
	sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "bench: no token" >&2; exit 1; }
auth="Authorization: Bearer $token"
ctype="Content-Type: application/fhir+json"

# ---- preload: one Patient to read, PRELOAD Patients to update (one curl, keep-alive) -----------
read_id=$(curl_ -H "$auth" -H "$ctype" -d '{"resourceType":"Patient","active":true,"name":[{"use":"official","family":"Benchmark","given":["Rea","D."]}],"gender":"female","birthDate":"1970-01-01","address":[{"line":["1 Main St"],"city":"Springfield","postalCode":"01101"}]}' \
	"$base/fhir/Patient" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$read_id" ] || { echo "bench: preload create failed" >&2; exit 1; }
{
	for i in $(seq 0 $((PRELOAD - 1))); do
		[ "$i" -gt 0 ] && echo next
		printf 'url = "%s/fhir/Patient/bench-%d"\ncacert = "%s"\nsilent\nshow-error\nrequest = "PUT"\nheader = "%s"\nheader = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
			"$base" "$i" "$cacert" "$auth" "$ctype"
		printf 'data = "{\\"resourceType\\":\\"Patient\\",\\"id\\":\\"bench-%d\\",\\"active\\":true}"\n' "$i"
	done
} >"$work/preload.curl"
created=$(curl -sS --no-progress-meter --parallel --parallel-max 32 -K "$work/preload.curl" | grep -c '^201$' || true)
[ "$created" = "$PRELOAD" ] || { echo "bench: preload created $created of $PRELOAD" >&2; exit 1; }
curl_ -H "$auth" -o "$work/resource.json" "$base/fhir/Patient/$read_id"
# BENCH_READ_SCOPE: the read test uses a token of a second client with these scopes instead, e.g.
# 'system/Patient.rs?gender=female' (a v2 restriction: every read is checked by the access policy,
# docs/security.md "The access decision"); the resource read is a female, active Patient.
read_token=$token
if [ -n "${BENCH_READ_SCOPE:-}" ]; then
	"$SALUS_BIN" client add --data "$data" --id benchread --scope "$BENCH_READ_SCOPE" --secret-file "$work/secret" >/dev/null
	read_token=$(curl_ -u "benchread:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
		sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
	[ -n "$read_token" ] || { echo "bench: no token for BENCH_READ_SCOPE" >&2; exit 1; }
	code=$(curl_ -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $read_token" "$base/fhir/Patient/$read_id")
	[ "$code" = 200 ] || { echo "bench: BENCH_READ_SCOPE cannot read the resource ($code)" >&2; exit 1; }
fi
sleep 1
idle_kb=$(mem VmRSS)

export BENCH_DIR=$here BENCH_TOKEN=$token BENCH_PRELOAD=$PRELOAD
results=$work/results
: >"$results"
run_wrk() { # name script url
	local name=$1 script=$2 url=$3
	BENCH_NAME=$name wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --timeout 10s -s "$here/$script" "$url" |
		tee -a "$work/wrk.log" | grep '^RESULT' | tee -a "$results" >/dev/null
}

echo "salus bench: $(nproc) cores, $CONNS connections, $THREADS wrk threads, ${SECS}s per test, $("$SALUS_BIN" version)"
TESTS=" ${BENCH_TESTS:-read create update batch} "
want() { [[ $TESTS == *" $1 "* ]]; }
want read && BENCH_TOKEN=$read_token BENCH_PATH=/fhir/Patient/$read_id run_wrk read read.lua "$base"
want create && run_wrk create create.lua "$base"
want update && run_wrk update update.lua "$base"
if want batch; then
batch_status=$(curl_ -o "$work/batch.json" -w '%{http_code}' -H "$auth" -H "$ctype" \
	-d '{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}},{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}]}' \
	"$base/fhir")
if [ "$batch_status" = 405 ] || [ "$batch_status" = 404 ]; then
	echo "batch: not implemented"
else
	# a 200 batch-response can still hide failed entries: check that both were created
	[ "$batch_status" = 200 ] && [ "$(grep -o '"status":"201' "$work/batch.json" | wc -l)" = 2 ] ||
		{ echo "bench: batch answered $batch_status: $(head -c 300 "$work/batch.json")" >&2; exit 1; }
	run_wrk batch batch.lua "$base"
fi
fi
peak_kb=$(mem VmHWM)
kill "$salus_pid"; wait "$salus_pid" 2>/dev/null || true; salus_pid=
[ -n "${BENCH_RESULTS_OUT:-}" ] && cat "$results" >>"$BENCH_RESULTS_OUT"

if [ "${BENCH_NGINX:-1}" != 0 ]; then

# ---- nginx ceiling: the same JSON as a static file over TLS -------------------------------------
ng=$work/nginx
mkdir -p "$ng/logs" "$ng/www/fhir/Patient"
cp "$work/resource.json" "$ng/www/fhir/Patient/$read_id"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$ng/key.pem" -out "$ng/cert.pem" 2>/dev/null
user_line=
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$ng/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $ng/nginx.pid;
error_log $ng/logs/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $ng/tmp;
	proxy_temp_path $ng/tmp; fastcgi_temp_path $ng/tmp; uwsgi_temp_path $ng/tmp; scgi_temp_path $ng/tmp;
	keepalive_requests 1000000;
	keepalive_timeout 30s;
	server {
		listen 127.0.0.1:$NGINX_PORT ssl;
		ssl_certificate $ng/cert.pem;
		ssl_certificate_key $ng/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $ng/www;
		default_type application/fhir+json;
		add_header Strict-Transport-Security "max-age=63072000; includeSubDomains" always;
		add_header X-Content-Type-Options nosniff always;
		add_header ETag 'W/"1"';
	}
}
EOF
mkdir -p "$ng/tmp"
nginx -p "$ng" -c "$ng/nginx.conf" -e "$ng/logs/error.log" &
nginx_pid=$!
for _ in $(seq 1 200); do
	curl -sS --cacert "$ng/cert.pem" -o /dev/null "https://127.0.0.1:$NGINX_PORT/fhir/Patient/$read_id" 2>/dev/null && break
	kill -0 "$nginx_pid" 2>/dev/null || { cat "$ng/logs/error.log" >&2; exit 1; }
	sleep 0.05
done
cmp -s <(curl -sS --cacert "$ng/cert.pem" "https://127.0.0.1:$NGINX_PORT/fhir/Patient/$read_id") "$work/resource.json" ||
	{ echo "bench: nginx does not serve the resource" >&2; exit 1; }
BENCH_TOKEN="" BENCH_PATH=/fhir/Patient/$read_id run_wrk nginx-read read.lua "https://127.0.0.1:$NGINX_PORT"
kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=
fi

# ---- report ------------------------------------------------------------------------------------
awk -v idle="$idle_kb" -v peak="$peak_kb" '
	{ rps[$2] = $3; p50[$2] = $4; p99[$2] = $5; n[$2] = $6; bad[$2] = $7 + $8 }
	END {
		printf "%-12s %12s %10s %10s %10s\n", "test", "req/s", "p50 ms", "p99 ms", "errors"
		split("read create update batch nginx-read", order, " ")
		for (i = 1; i <= 5; i++) {
			t = order[i]
			if (!(t in rps)) continue
			printf "%-12s %12.0f %10.2f %10.2f %10d\n", t, rps[t], p50[t], p99[t], bad[t]
		}
		if ("batch" in rps) printf "batch: %.0f resources/s (100 entries per request)\n", rps["batch"] * 100
		if (rps["nginx-read"] > 0) printf "read ratio salus/nginx: %.2f\n", rps["read"] / rps["nginx-read"]
		printf "salus RSS idle: %.1f MB, peak under load: %.1f MB\n", idle / 1024, peak / 1024
		for (t in bad) if (bad[t] > 0) { printf "WARNING: %s had %d failed requests\n", t, bad[t]; fail = 1 }
		exit fail
	}' "$results"
