#!/bin/sh
# Build a copy of mailtriage whose parser modules are compiled by mypyc (setup.py)
# into DIR, for the benchmarks; the working tree is not touched.
#
#   bench/build_native.sh DIR
#   PYTHONPATH=DIR .venv/bin/python bench/bench_parse.py
#
# DIR then holds the package with the compiled modules beside their sources, which
# PYTHONPATH puts before the editable install. Takes about a minute.
set -eu

out=${1:?usage: bench/build_native.sh DIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Build in a copy: setuptools writes build/ and the extensions next to the sources.
cp -r "$repo/pyproject.toml" "$repo/setup.py" "$repo/mailtriage" "$work/"
find "$work/mailtriage" -name __pycache__ -prune -exec rm -rf {} +
(cd "$work" && MAILTRIAGE_COMPILE=1 "$python" setup.py -q build_ext --inplace) \
    > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
rm -rf "$out"
mkdir -p "$out"
# mypyc puts the runtime shared by the compiled modules at the top level.
cp -r "$work/mailtriage" "$work"/*__mypyc*.so "$out/"
echo "compiled mailtriage in $out: run with PYTHONPATH=$out"
