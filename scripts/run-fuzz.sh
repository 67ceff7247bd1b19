#!/usr/bin/env bash
# run-fuzz.sh BUILD_DIR — run every libFuzzer target briefly on its committed seed corpus.
# Target fuzz_NAME reads seeds from tests/fuzz/corpus/NAME/.  New inputs go to a scratch dir,
# never into the committed corpus.  SALUS_FUZZ_SECONDS (default 10) per target.
set -euo pipefail
cd "$(dirname "$0")/.."
bdir=$1
secs=${SALUS_FUZZ_SECONDS:-10}
n=0
for t in "$bdir"/tests/fuzz/fuzz_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t"); name=${name#fuzz_}
  seeds=tests/fuzz/corpus/$name
  scratch=$(mktemp -d)
  echo "fuzz: $name (${secs}s, seeds $(ls "$seeds" 2>/dev/null | wc -l))"
  ASAN_OPTIONS=detect_leaks=1 "$t" -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=0 -artifact_prefix="$scratch/" "$scratch" "$seeds" >"$scratch/log" 2>&1 || {
      tail -40 "$scratch/log"; echo "fuzz: $name FAILED (artifacts in $scratch)"; exit 1; }
  rm -rf "$scratch"
  n=$((n+1))
done
echo "fuzz: $n targets ok"
