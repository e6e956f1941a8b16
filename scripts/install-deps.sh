#!/usr/bin/env bash
# Installs the Debian packages minnow's build and tests need. Idempotent; run as root (or with sudo).
#   cmake, gcc, make, pkg-config : build
#   libpcre2-dev                 : tokenizer pre-split regexes (Unicode properties)
#   libutf8proc-dev              : Unicode normalisation/categories for tokenizers
#   libcmocka-dev                : unit tests
#   libedit-dev                  : line editing in `minnow chat`
#   libmicrohttpd-dev, libcjson-dev : `minnow serve` (HTTP, JSON)
#   clang, libclang-rt-14-dev    : libFuzzer targets and sanitizers
set -euo pipefail
pkgs=(cmake gcc make pkg-config libpcre2-dev libutf8proc-dev libcmocka-dev libedit-dev
      libmicrohttpd-dev libcjson-dev clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
