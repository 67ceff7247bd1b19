#!/usr/bin/env bash
# deid_eval.sh — regression floor for the PHI detector on the development corpora.
# Runs `salus deid eval --json` on ../shared/deid (relative to the repository) and
# fails when a figure drops below its floor (set a little under the figures of
# docs/deid.md, so a real regression fails and noise does not).  Also checks the
# NDJSON span output format and per-line error records.  Skips (exit 0) with a
# message when the corpora are not present.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${SALUS_BIN:-$root/build/salus}
data=${SALUS_DEID_DATA:-$root/../shared/deid}
if [ ! -d "$data" ]; then
  echo "deid_eval: $data not present, skipping"
  exit 0
fi
[ -x "$bin" ] || { echo "deid_eval: no salus binary at $bin"; exit 1; }
fail=0

# field FILE.json KEY1 KEY2: a number from the one-line JSON report ("token": {"recall": 0.99...})
field() {
  local js=$1 obj=$2 key=$3
  sed -n "s/.*\"$obj\": {[^}]*\"$key\": \([0-9.]*\).*/\1/p" <<<"$js"
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

check() { # name file ignore min_recall min_precision max_leak
  local name=$1 file=$2 ignore=$3 rmin=$4 pmin=$5 lmax=$6
  [ -f "$data/$file" ] || { echo "deid_eval: $file missing, skipped"; return; }
  local args=(deid eval --gold "$data/$file" --json)
  [ -n "$ignore" ] && args+=(--ignore "$ignore")
  local js; js=$("$bin" "${args[@]}")
  local r p leak
  r=$(field "$js" token recall); p=$(field "$js" token precision)
  leak=$(sed -n 's/.*"leak_rate": \([0-9.]*\).*/\1/p' <<<"$js")
  echo "deid_eval: $name token recall $r precision $p leak $leak"
  ge "$r" "$rmin" || { echo "deid_eval: FAIL $name recall $r < $rmin"; fail=1; }
  ge "$p" "$pmin" || { echo "deid_eval: FAIL $name precision $p < $pmin"; fail=1; }
  ge "$lmax" "$leak" || { echo "deid_eval: FAIL $name leak rate $leak > $lmax"; fail=1; }
}

check synthetic synthetic-a-dev.ndjson "" 0.9995 0.9995 0.004
check physionet physionet-dev.ndjson "" 0.974 0.893 0.020
check presidio presidio-synth-v2.json "TITLE,NRP,ORGANIZATION" 0.800 0.990 0.35

# The synthetic notes written in capitals and in lower case (ASCII letters only, so the
# character offsets of the gold stay valid): notes without case evidence.
if command -v jq >/dev/null && [ -f "$data/synthetic-a-dev.ndjson" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for m in upcase downcase; do
    jq -c ".text |= ascii_$m | .phi |= map(.text |= ascii_$m)" "$data/synthetic-a-dev.ndjson" >"$tmp/synthetic-$m.ndjson"
  done
  data_saved=$data data=$tmp
  check synthetic-upcase synthetic-upcase.ndjson "" 0.990 0.999 0.08
  check synthetic-downcase synthetic-downcase.ndjson "" 0.995 0.999 0.03
  data=$data_saved
else
  echo "deid_eval: jq missing, case variants skipped"
fi

# The proxy notes (tools/deid-proxy-notes.py: note kinds of no dev set, syllable names and places
# in no dictionary), two seeds; generated here, so they need only python3.
if command -v python3 >/dev/null; then
  ptmp=$(mktemp -d)
  for seed in 11 23; do
    python3 "$root/tools/deid-proxy-notes.py" "$seed" 300 >"$ptmp/proxy-$seed.ndjson"
  done
  data_saved=$data data=$ptmp
  check proxy-11 proxy-11.ndjson "" 0.998 0.998 0.01
  check proxy-23 proxy-23.ndjson "" 0.998 0.998 0.01
  data=$data_saved
  rm -rf "$ptmp"
fi

# every type must be found (token recall 1.0) on the synthetic notes
if [ -f "$data/synthetic-a-dev.ndjson" ]; then
  js=$("$bin" deid eval --gold "$data/synthetic-a-dev.ndjson" --json)
  for t in CONTACT ID AGE NAME DATE LOCATION; do
    r=$(sed -n "s/.*\"$t\": {\"tokens\": [0-9]*, \"token_recall\": \([0-9.]*\).*/\1/p" <<<"$js")
    ge "$r" 1.0 || { echo "deid_eval: FAIL synthetic $t recall $r < 1.0"; fail=1; }
  done
fi

# output format: one line per input, character offsets, error records
out=$(printf '%s\n' '{"id": "a", "text": "Caf\u00e9 owner Dr. Quarvell, call 617-555-0134."}' '{bad' '{"id": 3}' |
      "$bin" deid scan --spans --ndjson)
[ "$(wc -l <<<"$out")" -eq 3 ] || { echo "deid_eval: FAIL expected 3 output lines"; fail=1; }
grep -q '^{"id": "a", "spans": \[{"start": 15, "end": 23, "type": "NAME"' <<<"$out" ||
  { echo "deid_eval: FAIL span offsets: $out"; fail=1; }
grep -q '"error"' <<<"$(sed -n 2p <<<"$out")" || { echo "deid_eval: FAIL no error record"; fail=1; }

[ $fail -eq 0 ] && echo "deid_eval: ok"
exit $fail
