#!/bin/sh
# Build a copy of mailtriage whose parser modules are compiled by mypyc (setup.py),
# as a wheel install has them, into DIR; the working tree is not touched. For the
# benchmarks, bench/compare_builds.py and the tests against the compiled parsers:
#
#   bench/build_native.sh DIR
#   PYTHONPATH=DIR .venv/bin/python bench/bench_parse.py
#
# DIR then holds the package with the compiled modules beside their sources, which
# PYTHONPATH puts before the editable install (pure Python). Needs the mypy of the
# test extras; takes about 30 seconds.
set -eu

out=${1:?usage: bench/build_native.sh DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Build in a copy: setuptools writes build/ and the extensions next to the sources.
cp -r "$repo/pyproject.toml" "$repo/setup.py" "$repo/mailtriage" "$work/"
find "$work/mailtriage" -name __pycache__ -prune -exec rm -rf {} +
(cd "$work" && "$python" setup.py -q build_ext --inplace) \
    > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
rm -rf "$out"
mkdir -p "$out"
# mypyc puts the runtime shared by the compiled modules at the top level.
cp -r "$work/mailtriage" "$work"/*__mypyc*.so "$out/"
echo "compiled mailtriage in $out: run with PYTHONPATH=$out"
