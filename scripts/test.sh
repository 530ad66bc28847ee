#!/usr/bin/env bash
# The whole test suite: set-up (Debian packages included), lint, types, tests.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-daemons
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check mailtriage tests bench scripts
ruff format --check mailtriage tests bench scripts
echo "== mypy"
mypy
echo "== pytest"
pytest "$@"
