#!/usr/bin/env bash
# The whole check: install, lint, format check, type check, then the test suite on the
# embedded SQLite default and on a throwaway PostgreSQL server the suite starts itself (the
# cluster tests also start a throwaway Redis server), and the web app in a real browser
# (Debian's Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  echo "PostgreSQL server binaries missing: installing Debian's postgresql package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

if ! command -v redis-server >/dev/null; then
  echo "redis-server missing: installing Debian's redis-server package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if [[ ! -x /usr/bin/chromium ]]; then
  # The web app's browser tests drive Debian's Chromium (Playwright's own builds are never
  # downloaded).
  echo "Chromium missing: installing Debian's chromium package"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== ruff check";        .venv/bin/ruff check .
echo "== ruff format --check"; .venv/bin/ruff format --check .
echo "== mypy";              .venv/bin/mypy neolith_orchestrator
echo "== pytest (sqlite + postgresql)"
.venv/bin/python -m pytest "$@"
