#!/usr/bin/env bash
# The one benchmark entry point: `scripts/bench.sh [NAME ...|all]` runs benchmarks/<NAME>/run.py
# in the app runtime and each writes its own section of docs/benchmarks.md.
# A new benchmark needs nothing here: add benchmarks/<name>/run.py and it is found.
set -euo pipefail
cd "$(dirname "$0")/.."

# `all` runs these first, in this order, then any other benchmark found, alphabetically.
ORDER=(nlu conversation proactive memory)

available() {
  local dir
  for dir in benchmarks/*/; do
    [ -f "${dir}run.py" ] && basename "$dir"
  done
}

usage() {
  echo "usage: scripts/bench.sh [all|$(available | paste -sd'|')]..." >&2
  exit 2
}

names=("$@")
[ ${#names[@]} -eq 0 ] && names=(all)
if [ "${names[0]}" = all ]; then
  found=$(available)
  names=()
  for name in "${ORDER[@]}"; do
    grep -qx "$name" <<<"$found" && names+=("$name")
  done
  for name in $found; do
    [[ " ${ORDER[*]} " == *" $name "* ]] || names+=("$name")
  done
fi

for name in "${names[@]}"; do
  [ -f "benchmarks/$name/run.py" ] || { echo "no benchmark called '$name'" >&2; usage; }
done

for name in "${names[@]}"; do
  echo "== benchmark: $name"
  PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/python "benchmarks/$name/run.py"
done
