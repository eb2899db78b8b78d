#!/usr/bin/env bash
# Set up Herald's two runtimes from the lock files. Quick when nothing changed.
#   .venv       app runtime, Python 3.12: our package, rasa-sdk, SQLAlchemy 2, dev tools
#   .venv-rasa  Rasa runtime, Python 3.10: rasa 3.6 and the channel libraries
set -euo pipefail
cd "$(dirname "$0")/.."

# Find a Python the way users have one: on PATH (pyenv shims read .python-version),
# then pyenv itself, then uv. Prints the interpreter path or nothing.
find_python() {
  local version=$1 candidate
  for candidate in "python$version" "$(command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null)/versions/$version"*/bin/python"$version"; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 \
       && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"; return
    fi
  done
  if command -v uv >/dev/null 2>&1; then uv python find "$version" 2>/dev/null && return; fi
}

require_python() {
  local version=$1 why=$2 found
  found=$(find_python "$version")
  if [ -z "$found" ]; then
    cat >&2 <<MSG
Herald needs Python $version ($why) and none was found.
Install it one of these ways, then run the command again:
  pyenv:  pyenv install $version          (this repo's .python-version selects it)
  uv:     uv python install $version
  Debian/Ubuntu: apt-get install python$version python$version-venv
MSG
    exit 1
  fi
  echo "$found"
}

# venv DIR PYTHON LOCKFILE [EXTRA_STAMP_INPUT...]: (re)install only when the inputs changed.
sync_venv() {
  local dir=$1 python=$2 lock=$3; shift 3
  local stamp; stamp=$(cat "$lock" "$@" | sha256sum | cut -d' ' -f1)
  if [ -f "$dir/.herald-stamp" ] && [ "$(cat "$dir/.herald-stamp")" = "$stamp" ]; then
    return 1
  fi
  echo "setting up $dir from $lock…"
  [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock"
  echo "$stamp" > "$dir/.herald-stamp"
}

APP_PYTHON=$(require_python 3.12 "for the action server, worker, API and tools")
RASA_PYTHON=$(require_python 3.10 "Rasa Open Source 3.6 supports Python 3.8-3.10")

if sync_venv .venv "$APP_PYTHON" requirements/app.lock pyproject.toml; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
fi
sync_venv .venv-rasa "$RASA_PYTHON" requirements/rasa.lock || true
mkdir -p var models
