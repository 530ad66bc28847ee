"""``mailtriage chat``: one question or a REPL, streaming from a scripted
OpenAI-compatible server found through the environment, or the findings without
one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from scripted_llm import Reply, ScriptedLLM, scripted_llm
from typer.testing import CliRunner

from mailtriage.app.commands import chat
from mailtriage.app.ingest.pipeline import ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
TENANTS = SAMPLES / "tenants.toml"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chat-cli") / "samples.duckdb"
    settings = load_settings(TENANTS, {"store": {"db": str(path)}})
    with open_store(settings) as store:
        ingest_files(
            store,
            settings,
            [str(SAMPLES / "postfix.log"), str(SAMPLES / "dovecot.log")],
        )
    return path


@pytest.fixture
def db(sample: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "samples.duckdb"
    shutil.copy(sample, copy)
    return copy


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm([]) as server:
        yield server


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """mailtriage"""

    chat.register(app)
    result = CliRunner().invoke(app, ["chat", *args], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_a_question_streams_the_answer_and_shows_the_tool_calls(
    db: Path, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILTRIAGE_LLM__BASE_URL", llm.url)
    llm.script[:] = [
        Reply(calls=[("get_findings", {"tenant": "initech"})]),
        Reply(text="initech's LMTP path is slow: B99EF20C5F8."),
    ]
    code, out, err = run("--db", str(db), "--config", str(TENANTS), "slow?")

    assert code == 0, err
    assert "initech's LMTP path is slow: B99EF20C5F8." in out
    assert "[evidence] queue IDs: B99EF20C5F8" in out
    assert '[tool] get_findings {"tenant": "initech"}' in err
    assert "[tool] get_findings -> success" in err


def test_the_repl_keeps_one_conversation(
    db: Path, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)
    monkeypatch.delenv("MAILTRIAGE_LLM__BASE_URL", raising=False)
    llm.script[:] = [Reply(text="first"), Reply(text="second")]
    llm.requests.clear()
    code, out, _ = run(
        "--db",
        str(db),
        "--tenant",
        "acme",
        "--config",
        str(TENANTS),
        stdin="one\ntwo\nexit\n",
    )

    assert code == 0
    assert "first" in out and "second" in out
    second = llm.requests[1]["messages"]
    assert [m["content"] for m in second[1:]] == ["one", "first", "two"]
    assert "may only see tenant 'acme'" in second[0]["content"]


def test_without_an_llm_it_says_what_to_set_and_shows_findings(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "MAILTRIAGE_LLM__BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code, out, _ = run(
        "--db", str(db), "--config", str(TENANTS), "what is wrong with globex?"
    )

    assert code == 0
    assert out.startswith("No LLM is configured. Set MAILTRIAGE_LLM__BASE_URL")
    assert "mailtriage triage tenant globex" in out
    assert "CRITICAL quota_exceeded" in out


def test_an_unknown_tenant_is_refused(db: Path) -> None:
    code, _, err = run("--db", str(db), "--config", str(TENANTS), "--tenant", "nope")

    assert code == 2
    assert "'nope' is not a tenant" in err
