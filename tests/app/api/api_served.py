"""The API tests' service: the bundled sample logs and three tokens.

The sample logs (``samples/``, written by real Postfix and Dovecot) are ingested once
per session into a DuckDB file; each test module that needs a server gets its own
copy, served by uvicorn from a thread on a free port (``service_checks.serving``),
with three tokens: an operator's and one for each of two tenants.
"""

from __future__ import annotations

from pathlib import Path

from service_checks import Served, serving

from mailtriage.app.api.auth import token_digest
from mailtriage.app.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
TENANTS = SAMPLES / "tenants.toml"

OPERATOR = "operator-secret-token"
ACME = "acme-secret-token"
GLOBEX = "globex-secret-token"
TOKENS = [
    {"name": "ops", "sha256": token_digest(OPERATOR)},
    {"name": "acme-readonly", "sha256": token_digest(ACME), "tenant": "acme"},
    {"name": "globex-readonly", "sha256": token_digest(GLOBEX), "tenant": "globex"},
]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def service_settings(db: Path, **sections: dict[str, object]) -> Settings:
    """Settings for a test service over ``db`` with the three tokens."""
    overrides: dict[str, object] = {"store": {"db": str(db)}, "tokens": TOKENS}
    overrides.update(sections)
    return load_settings(TENANTS, overrides)


__all__ = ["Served", "serving"]
