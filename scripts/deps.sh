#!/usr/bin/env bash
# deps.sh — install what is missing on Debian 12: apt packages, then the pinned npm packages.
# Idempotent and quiet when everything is present.  Used by `make run` and `make check`.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libmicrohttpd-dev libgnutls28-dev nettle-dev libjansson-dev libsqlite3-dev libsodium-dev libinih-dev
  libhyperscan-dev libutf8proc-dev liboath-dev libqrencode-dev libcurl4-openssl-dev libcmocka-dev
  wamerican scowl miscfiles hunspell-en-med
  libcjose-dev libssl-dev chromium
  nodejs npm openssl curl wrk nginx-light
)
if [ "${SALUS_DEPS_EXTRA:-}" != "" ]; then read -r -a extra <<<"$SALUS_DEPS_EXTRA"; APT_PKGS+=("${extra[@]}"); fi

missing=()
for p in "${APT_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # a tool present from elsewhere (e.g. nodejs/npm from another source) counts as installed
    case "$p" in
      nodejs) command -v node >/dev/null && continue ;;
      npm) command -v npm >/dev/null && continue ;;
    esac
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Pinned npm packages (FHIR definitions, dictionaries, test clients); reinstall when the lock changes.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
