#!/usr/bin/env bash
# Installs what the thumbnail benchmark runs besides cargo: libvips'
# vipsthumbnail and GNU time. Fails loudly when they cannot be installed.
set -euo pipefail

missing=()
command -v vipsthumbnail >/dev/null || missing+=(libvips-tools)
[ -x /usr/bin/time ] || missing+=(time)
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "bench-thumbnails: missing ${missing[*]}; install them with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "bench-thumbnails: installing ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
command -v vipsthumbnail >/dev/null || { echo "bench-thumbnails: vipsthumbnail is still missing" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-thumbnails: /usr/bin/time is still missing" >&2; exit 1; }
