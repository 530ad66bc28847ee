"""The build hook that compiles the parser modules with mypyc.

``pyproject.toml`` holds everything else about the package. A wheel build (``pip
install .``, ``pip wheel .``, the Dockerfile) compiles the modules that read and
assemble log lines into C extensions; the ``.py`` files stay in the package beside
them. ``[build-system]`` requires mypy, which ships mypyc, so an isolated build has
it. The modules work the same uncompiled, only slower, and two builds stay pure
Python:

- an editable install (``pip install -e .``, what ``scripts/setup.sh`` makes), so that
  an edit to a parser takes effect without a rebuild;
- any build with ``MAILTRIAGE_COMPILE=0``.

``bench/build_native.sh`` compiles a copy for the benchmarks, through ``build_ext``.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# The modules on the per-line path.
COMPILED = [
    "mailtriage/parsers/records.py",
    "mailtriage/parsers/model.py",
    "mailtriage/parsers/envelope.py",
    "mailtriage/parsers/line.py",
    "mailtriage/parsers/postfix.py",
    "mailtriage/parsers/dovecot.py",
    "mailtriage/parsers/shapes.py",
    "mailtriage/parsers/classify.py",
    "mailtriage/parsers/tenants.py",
    "mailtriage/parsers/assembler.py",
]

# setup.py commands that build the package's files. The others only describe it
# (egg_info, dist_info, sdist) or make an editable install (editable_wheel, develop),
# and for those compiling would be wasted or, in the working tree, in the way.
_BUILDS = frozenset({"bdist_wheel", "build", "build_ext", "install"})


def ext_modules() -> list[object]:
    """The mypyc extensions when this run builds the package, else none."""
    if os.environ.get("MAILTRIAGE_COMPILE") == "0" or _BUILDS.isdisjoint(sys.argv):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            "building mailtriage compiles its parsers with mypyc, which is not "
            "installed here: build with pip's build isolation (the default), "
            "install mypy, or set MAILTRIAGE_COMPILE=0 for a pure-Python build"
        ) from exc
    return list(mypycify(COMPILED, opt_level="3", group_name="mailtriage"))


setup(ext_modules=ext_modules())
