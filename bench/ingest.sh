#!/bin/sh
# ingest.sh — Synthea transaction-bundle ingest rate (resources/s) over HTTPS
# against a fresh `salus serve`.  SALUS_BIN picks the binary (default
# build/salus).  Usage: bench/ingest.sh [concurrency] [rounds]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec node "$here/ingest.mjs" "${1:-4}" "${2:-1}"
