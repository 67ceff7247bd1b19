#!/usr/bin/env bash
# run-demo.sh SALUS DATA LISTEN — create the demo data directory on first run, then serve it.
set -euo pipefail
salus=$1 data=$2 listen=$3
if [ ! -e "$data/salus.ini" ]; then
  "$salus" init --data "$data" --demo --patients 20
fi
port=${listen##*:}
cat <<MSG

  Salus is starting on https://localhost:$port  (self-signed certificate: $data/tls/cert.pem)

  FHIR base:     https://localhost:$port/fhir
  Capabilities:  curl --cacert $data/tls/cert.pem https://localhost:$port/fhir/metadata

  Get a token for the demo client and list patients:
    TOKEN=\$(curl -s --cacert $data/tls/cert.pem -u "demo:\$(cat $data/demo-client-secret)" \\
            -d grant_type=client_credentials https://localhost:$port/auth/token | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
    curl -s --cacert $data/tls/cert.pem -H "Authorization: Bearer \$TOKEN" "https://localhost:$port/fhir/Patient?_count=5"

MSG
exec "$salus" serve --data "$data" --listen "$listen"
