"""``mailtriage serve`` as a process: refusals at start, SIGKILL and restart while
following a growing log, SIGTERM committing what was accepted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_checks import clean_fingerprint, fingerprint, generate_log

from mailtriage.app.api.auth import token_digest
from mailtriage.app.settings import load_settings
from mailtriage.app.store import open_store

MAILTRIAGE = Path(sys.executable).with_name("mailtriage")
# uvicorn stops gracefully on SIGTERM, then raises the signal again so that the
# process ends the way its supervisor asked.
STOPPED_BY_SIGTERM = -signal.SIGTERM


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRIAGE_")}
    env.update(extra)
    return env


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.05)


class Serve:
    """One ``mailtriage serve`` process following one file."""

    def __init__(self, db: Path, config: Path, log: Path, stderr: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [str(MAILTRIAGE), "serve", "--db", str(db), "--config", str(config)]
        argv += ["--follow", str(log), "--port", str(self.port)]
        env = _env(
            MAILTRIAGE_INGEST__BATCH_LINES="1500",
            MAILTRIAGE_INGEST__BATCH_SECONDS="0.2",
            MAILTRIAGE_INGEST__FOLLOW_POLL_SECONDS="0.05",
            MAILTRIAGE_SERVER__LOG_LEVEL="WARNING",
        )
        self.stderr = stderr.open("ab")
        self.proc = subprocess.Popen(argv, env=env, stderr=self.stderr)
        _wait(self._answers, 30, "serve answers /healthz")

    def _answers(self) -> bool:
        assert self.proc.poll() is None, "mailtriage serve exited"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def ready(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/readyz", timeout=5).json()
        return body

    def end(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            self.stderr.close()

    def kill_if_running(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stderr.close()


@pytest.fixture
def processes() -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for serve in started:
        serve.kill_if_running()


def _writer(log: Path, lines: list[str], step: int, pause: float) -> threading.Thread:
    def write() -> None:
        with log.open("a") as fh:
            for start in range(0, len(lines), step):
                fh.write("".join(lines[start : start + step]))
                fh.flush()
                time.sleep(pause)

    return threading.Thread(target=write)


def test_sigkill_and_restart_end_with_the_totals_of_one_clean_ingest(
    tmp_path: Path, processes: list[Serve]
) -> None:
    lines, tenants = generate_log(tmp_path / "gen.log", 20_000, seed=5)
    clean = clean_fingerprint(lines, tenants, tmp_path)
    db, log = tmp_path / "live.duckdb", tmp_path / "mail.log"
    log.touch()
    first = Serve(db, tenants, log, tmp_path / "serve.err")
    processes.append(first)
    writing = _writer(log, lines, 1000, 0.05)
    writing.start()
    _wait(lambda: first.ready()["lines_committed"] >= 6000, 60, "first commits land")
    assert first.end(signal.SIGKILL) == -signal.SIGKILL
    writing.join()
    # Restarted on the same database: resume from the checkpoint.
    second = Serve(db, tenants, log, tmp_path / "serve.err")
    processes.append(second)
    size = log.stat().st_size
    _wait(
        lambda: (
            (r := second.ready())["followers"][0]["offset"] == size
            and r["queued_lines"] == 0
        ),
        60,
        "the whole file is read",
    )
    assert second.end(signal.SIGTERM) == STOPPED_BY_SIGTERM
    settings = load_settings(tenants, {"store": {"db": str(db)}})
    with open_store(settings) as store:
        assert fingerprint(store) == clean


def test_sigterm_commits_every_accepted_line(
    tmp_path: Path, processes: list[Serve]
) -> None:
    lines, tenants = generate_log(tmp_path / "gen.log", 3000, seed=6)
    clean = clean_fingerprint(lines, tenants, tmp_path)
    db, log = tmp_path / "live.duckdb", tmp_path / "mail.log"
    log.write_text("".join(lines))
    serve = Serve(db, tenants, log, tmp_path / "serve.err")
    processes.append(serve)
    _wait(
        lambda: serve.ready()["followers"][0]["offset"] == log.stat().st_size,
        30,
        "the file is read",
    )
    # No wait for the commit: a graceful stop must commit what was read.
    assert serve.end(signal.SIGTERM) == STOPPED_BY_SIGTERM
    settings = load_settings(tenants, {"store": {"db": str(db)}})
    with open_store(settings) as store:
        assert fingerprint(store) == clean


def test_serve_refuses_a_public_address_without_tokens(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *(str(MAILTRIAGE), "serve", "--db", str(tmp_path / "x.duckdb")),
            *("--host", "0.0.0.0", "--port", str(_free_port())),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "refusing to listen on '0.0.0.0' without tokens" in done.stderr


def test_serve_with_tokens_may_listen_beyond_loopback(
    tmp_path: Path, processes: list[Serve]
) -> None:
    config = tmp_path / "tokens.toml"
    config.write_text(
        f'[[tokens]]\nname = "ops"\nsha256 = "{token_digest("s3cret")}"\n'
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            *(str(MAILTRIAGE), "serve", "--db", str(tmp_path / "x.duckdb")),
            *("--config", str(config), "--host", "0.0.0.0", "--port", str(port)),
        ],
        env=_env(),
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert proc.poll() is None, "mailtriage serve exited"
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait(answers, 30, "serve answers")
        denied = httpx.get(f"{url}/v1/stats/summary", timeout=5)
        allowed = httpx.get(
            f"{url}/v1/stats/summary",
            headers={"Authorization": "Bearer s3cret"},
            timeout=5,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == STOPPED_BY_SIGTERM
    assert denied.status_code == 401
    assert allowed.status_code == 200
