#!/usr/bin/env bash
# Installs the project and starts the server with a demo organization on the embedded
# SQLite database (migrated on first start). Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/neolith-orchestrator serve --demo "$@"
