#!/usr/bin/env bash
# policy.sh — the cost of the access decision on FHIR reads: one server, one data dir, the same
# resource read by id with two tokens, alternating in one run so both see the same machine load:
#   system  — client credentials, system/*.cruds: no policy work (no guards, no content check);
#   user    — a staff user's token (admin, user/*.rs, with TOTP; the server runs with
#             --policy.label_v_roles admin, so nothing is hidden from it): the per-request user checks
#             of a user token (the user record and generation), no policy work;
#   patient — a patient user's token (patient/*.rs, SMART code + PKCE flow, patient context): every
#             read is checked against the compartment (and the labels/Consent rules) on its content.
# patient vs user is the cost of the policy; user vs system the cost of being a user token.
# For each of BENCH_ROUNDS (5) rounds and each token: wrk (32 connections, BENCH_SECONDS, default 6) with
# bench/read.lua on BENCH_RESOURCE (Patient: the patient's own Patient; Observation: one of its
# Observations); server utime+stime from /proc before and after, divided by the requests completed.
# Prints one line per run and the medians.  BENCH_PERF=FILE: also `perf record -g` the server during the
# first round of each token, into FILE.system and FILE.patient (perf report -i FILE.patient --no-children).  Usage: bench/policy.sh [SALUS_BIN]   (default build/salus)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-$here/../build/salus}
rounds=${BENCH_ROUNDS:-5} secs=${BENCH_SECONDS:-6} port=${BENCH_PORT:-18843} res=${BENCH_RESOURCE:-Patient}
work=$(mktemp -d /tmp/salus-policy.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
tick=$(getconf CLK_TCK)
d=$work/data; ca=$d/tls/cert.pem; base=https://127.0.0.1:$port
C=(curl -s --cacert "$ca")
"$bin" init --data "$d" >/dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
"$bin" client add --data "$d" --id bench --scope 'system/*.cruds' --secret-file "$work/secret" >/dev/null 2>&1
"$bin" client add --data "$d" --id papp --scope 'patient/*.rs user/*.rs' --redirect-uri https://app.example/cb --public >/dev/null
"$bin" serve --data "$d" --listen "127.0.0.1:$port" --log.level warn --server.rate_limit 0 --policy.label_v_roles admin \
	>"$work/log" 2>&1 &
pid=$!
for _ in $(seq 200); do "${C[@]}" -o /dev/null "$base/health/live" && break; sleep 0.05; done
sys=$("${C[@]}" -u "bench:$(cat "$work/secret")" -d grant_type=client_credentials "$base/auth/token" |
	sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
post() { "${C[@]}" -H "Authorization: Bearer $sys" -H 'Content-Type: application/fhir+json' -d "$2" "$base/fhir/$1" |
	sed -n 's/.*"id":"\([^"]*\)".*/\1/p'; }
pidp=$(post Patient '{"resourceType":"Patient","active":true,"name":[{"family":"Benchmark","given":["Rea"]}],"birthDate":"1970-01-01"}')
obs=$(post Observation "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"pulse\"},\"subject\":{\"reference\":\"Patient/$pidp\"},\"valueQuantity\":{\"value\":72,\"unit\":\"/min\"}}")
[ -n "$pidp" ] && [ -n "$obs" ] || { echo "policy.sh: setup failed" >&2; cat "$work/log" >&2; exit 1; }
printf 'a long and unusual passphrase 9' >"$work/pw"
"$bin" user add --data "$d" --username benchpat --role patient --patient "$pidp" --password-file "$work/pw" >/dev/null
"$bin" user add --data "$d" --username benchadm --role admin --practitioner benchprac --password-file "$work/pw" \
	--totp-secret-out "$work/totp" >/dev/null
# the SMART standalone flow: authorize → sign in → [TOTP] → consent → code → token
user_token() { # USER SCOPE [TOTP_SECRET_FILE]
	local ver chal page tx loc code jar=$work/jar.$1
	ver=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
	chal=$(printf %s "$ver" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
	page=$("${C[@]}" -c "$jar" "$base/auth/authorize?client_id=papp&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=$2&state=s&code_challenge=$chal&code_challenge_method=S256")
	tx=$(printf %s "$page" | sed -n 's/.*name=tx value="\([^"]*\)".*/\1/p')
	"${C[@]}" -b "$jar" -o /dev/null --data-urlencode "tx=$tx" -d step=login -d "username=$1" --data-urlencode "password@$work/pw" "$base/auth/authorize"
	if [ -n "${3:-}" ]; then
		otp=$(python3 -c 'import base64,hmac,hashlib,struct,sys,time
k=base64.b32decode(open(sys.argv[1]).read().strip().upper()+"="*((8-len(open(sys.argv[1]).read().strip())%8)%8))
h=hmac.new(k,struct.pack(">Q",int(time.time())//30),hashlib.sha1).digest();o=h[-1]&15
print("%06d"%((struct.unpack(">I",h[o:o+4])[0]&0x7fffffff)%1000000))' "$3")
		"${C[@]}" -b "$jar" -o /dev/null --data-urlencode "tx=$tx" -d step=mfa -d "otp=$otp" "$base/auth/authorize"
	fi
	loc=$("${C[@]}" -b "$jar" -o /dev/null -w '%{redirect_url}' --data-urlencode "tx=$tx" -d step=consent -d decision=approve "$base/auth/authorize")
	code=$(printf %s "$loc" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
	"${C[@]}" -d grant_type=authorization_code -d "code=$code" -d redirect_uri=https://app.example/cb -d "code_verifier=$ver" \
		-d client_id=papp "$base/auth/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'
}
pat=$(user_token benchpat 'patient%2F*.rs')
usr=$(user_token benchadm 'user%2F*.rs' "$work/totp")
[ -n "$pat" ] && [ -n "$usr" ] || { echo "policy.sh: a user token flow failed" >&2; cat "$work/log" >&2; exit 1; }
path=/fhir/Patient/$pidp
[ "$res" = Observation ] && path=/fhir/Observation/$obs
for t in "$sys" "$usr" "$pat"; do # every token can read it
	[ "$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$base$path")" = 200 ] ||
		{ echo "policy.sh: a token cannot read $path" >&2; exit 1; }
done
out=$work/runs
for r in $(seq "$rounds"); do
	for name in system user patient; do
		t=$sys; [ "$name" = patient ] && t=$pat; [ "$name" = user ] && t=$usr
		c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		perfpid=
		if [ -n "${BENCH_PERF:-}" ] && [ "$r" = 1 ]; then # a CPU profile of the server, first round of each token
			perf record -q -g -p "$pid" -o "$BENCH_PERF.$name" -- sleep "$secs" >/dev/null 2>&1 &
			perfpid=$!
		fi
		line=$(BENCH_DIR=$here BENCH_TOKEN=$t BENCH_PATH=$path BENCH_NAME=read BENCH_PRELOAD=1 \
			wrk -t2 -c32 -d"${secs}s" -s "$here/read.lua" "$base" | grep '^RESULT')
		c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
		[ -n "$perfpid" ] && wait "$perfpid" 2>/dev/null || true
		echo "$line" | awk -v n="$name" -v c0="$c0" -v c1="$c1" -v t="$tick" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
			'{ printf "%-8s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  server CPU %6.1f us/request  load %s\n",
			   n, $3, $4, $5, (c1 - c0) * 1e6 / t / $6, l; if ($7 > 0) printf "  (%d non-2xx!)\n", $7 }' | tee -a "$out"
	done
done
for name in system user patient; do
	grep "^$name " "$out" | awk '{print $2}' | sort -n | awk -v n="$name" '{r[NR]=$1} END {m=int((NR+1)/2); printf "median %-8s %8.0f req/s", n, r[m]}'
	grep "^$name " "$out" | awk '{print $12}' | sort -n | awk '{c[NR]=$1} END {m=int((NR+1)/2); printf "  %6.1f us/request\n", c[m]}'
done
