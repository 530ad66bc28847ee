#!/usr/bin/env bash
# The main job on the embedded default: ingest the bundled sample logs (written by real
# Postfix and Dovecot) into ./mailtriage.duckdb, print the report and the findings, and
# serve them on http://127.0.0.1:8025 (API under /v1, chat page at /ui, /metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
db="${MAILTRIAGE_DB:-mailtriage.duckdb}"
mailtriage ingest --db "$db" --config samples/tenants.toml samples/postfix.log samples/dovecot.log
mailtriage report --db "$db"
mailtriage triage --db "$db" --config samples/tenants.toml
echo "serving $db on http://127.0.0.1:8025 (Ctrl-C stops)"
exec mailtriage serve --db "$db" --config samples/tenants.toml --host 127.0.0.1 --port 8025
