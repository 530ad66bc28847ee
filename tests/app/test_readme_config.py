"""The configuration example in the README is the config file's public shape: it
must load, and every key in it must be one the settings read."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Any

from mailtriage.app.settings import Settings, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_config() -> str:
    text = README.read_text()
    start = text.index("```toml", text.index("### Configuration")) + len("```toml")
    return text[start : text.index("```", start)]


def keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in data.items():
        if isinstance(value, dict) and prefix != "tenants.":
            found |= keys(value, f"{prefix}{key}.")
        else:
            found.add(f"{prefix}{key}")
    return found


def test_the_readme_configuration_loads(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"a token").hexdigest()
    config = tmp_path / "mailtriage.toml"
    config.write_text(readme_config().replace("<hex digest of the token>", digest))
    settings = load_settings(config)
    assert settings.ingest.file_batch_lines == 40_000
    assert settings.ingest.tz == "Europe/Berlin"
    assert "acme" in settings.tenants
    assert [t.tenant for t in settings.tokens] == ["acme"]


def test_every_key_of_the_readme_configuration_is_a_setting() -> None:
    data = tomllib.loads(readme_config())
    fields = {
        f"{section}.{name}"
        for section, model in Settings.model_fields.items()
        if model.annotation is not None and hasattr(model.annotation, "model_fields")
        for name in model.annotation.model_fields
    }
    sections = {k for k in keys(data) if not k.startswith(("tenants.", "tokens"))}
    assert sections <= fields, sections - fields
