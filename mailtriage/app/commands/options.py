"""Options that several commands share, declared once so their flags and help agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db", help="DuckDB file (env MAILTRIAGE_DB; default ./mailtriage.duckdb)."
    ),
]
"""``--db``: the DuckDB file; None leaves it to MAILTRIAGE_DB and the settings."""

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (tenants and the rest)."),
]
"""``--config``: the TOML settings file, never picked up implicitly."""
