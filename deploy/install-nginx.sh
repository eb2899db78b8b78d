#!/usr/bin/env bash
# Scale-out mode puts Debian's nginx in front of the Rasa replicas; install it when missing.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's nginx for the scale-out proxy…"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null
else
  echo "scale-out mode needs nginx: sudo apt-get install nginx" >&2
  exit 1
fi
