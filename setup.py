"""Optional native build: the parser modules compiled with mypyc.

mailtriage is pure Python and works as it is; ``pyproject.toml`` holds everything
else about the package. With ``MAILTRIAGE_COMPILE=1`` this hook compiles the modules
that read and assemble log lines into C extensions (the ``.py`` files stay in the
package, so an uncompiled install behaves the same, only slower):

    MAILTRIAGE_COMPILE=1 pip install --no-build-isolation .

mypyc ships with mypy (the ``test`` extra); ``--no-build-isolation`` lets the build use
the installed one. ``bench/build_native.sh`` builds such a copy for the benchmarks.
"""

from __future__ import annotations

import os

from setuptools import setup

# The modules on the per-line path. records.py and model.py stay interpreted: mypyc
# cannot compile a dataclass with a ClassVar field (records' ``kind``).
COMPILED = [
    "mailtriage/parsers/envelope.py",
    "mailtriage/parsers/line.py",
    "mailtriage/parsers/postfix.py",
    "mailtriage/parsers/dovecot.py",
    "mailtriage/parsers/shapes.py",
    "mailtriage/parsers/classify.py",
    "mailtriage/parsers/tenants.py",
    "mailtriage/parsers/assembler.py",
]


def ext_modules() -> list[object]:
    """The mypyc extensions when asked for, else none (a pure-Python build)."""
    if os.environ.get("MAILTRIAGE_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        raise SystemExit(
            "MAILTRIAGE_COMPILE=1 needs mypyc in the build environment: install mypy "
            "and build with pip's --no-build-isolation"
        ) from exc
    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=ext_modules())
