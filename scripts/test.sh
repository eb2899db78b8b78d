#!/usr/bin/env bash
# Everything CI checks: lint, types, Rasa data validation, then the whole pytest suite
# (unit, integration on SQLite and PostgreSQL, end to end with Rasa and a browser).
set -euo pipefail
cd "$(dirname "$0")/.."

# The web chat tests drive Debian's Chromium; never a downloaded browser.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing Debian's chromium for the browser tests…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

# The scale-out tests put Debian's nginx in front of several Rasa replicas.
deploy/install-nginx.sh

echo "== ruff"
.venv/bin/ruff check bot actions connectors rasa_sdk_plugins rasa_components tests benchmarks
echo "== mypy"
.venv/bin/mypy
echo "== rasa data validate"
.venv/bin/python scripts/validate.py
echo "== conversation tests (rasa test core)"
# Trains only if data, domain or config changed; the end-to-end tests reuse the model.
.venv/bin/python -c "from bot.stack import train_model; train_model()"
PYTHONPATH=. SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false \
  .venv-rasa/bin/rasa test core --stories tests/conversations --fail-on-prediction-errors \
  --model models/herald.tar.gz --out var/results
echo "== pytest"
.venv/bin/pytest "$@"
