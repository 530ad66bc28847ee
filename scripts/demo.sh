#!/usr/bin/env bash
# The main job on the embedded default: ingest the bundled sample logs into
# ./mailtriage.duckdb and report on them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
mailtriage parse --coverage samples/*.log
