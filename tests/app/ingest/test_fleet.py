"""Two hosts, each with ``mailtriage collect``, feeding one ``mailtriage serve``
that is stopped for a while and started again; one collector is killed with
SIGKILL during the outage. Once the spools have drained, the central store holds
exactly what one clean ingest of all the logs gives, and the Postfix side on one
host is joined to the Dovecot side logged on the other."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailtriage.app.ingest.collect import spool_status
from mailtriage.app.ingest.pipeline import host_key, ingest_files
from mailtriage.app.settings import load_settings
from mailtriage.app.store.base import DeliveryFilter, Scope, Store
from mailtriage.app.store.duckdb import DuckDBStore

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "samples"
GENERATOR = REPO / "bench" / "generate.py"
FAST = {
    "MAILTRIAGE_INGEST__BATCH_LINES": "800",
    "MAILTRIAGE_INGEST__BATCH_SECONDS": "0.1",
    "MAILTRIAGE_INGEST__FOLLOW_POLL_SECONDS": "0.05",
    "MAILTRIAGE_SERVER__LOG_LEVEL": "INFO",
    "MAILTRIAGE_INGEST__YEAR": "2026",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait(predicate: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not reached in {seconds} s"
        time.sleep(0.05)


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRIAGE_")}
    env.update(FAST)
    return env


class Process:
    """A ``mailtriage`` subcommand run as a process, its log in a file."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailtriage", *argv],
            env=environment(),
            stdout=self.log,
            stderr=self.log,
        )

    def end(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self.log.close()


class Central:
    """``mailtriage serve`` on a loopback port, with a DuckDB file."""

    def __init__(self, db: Path, config: Path, port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        argv = ["serve", "--db", str(db), "--config", str(config)]
        self.process = Process([*argv, "--port", str(port)], log)
        wait(self.answers, "serve answers /healthz")

    def answers(self) -> bool:
        assert self.process.proc.poll() is None, "mailtriage serve exited"
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def delivered(self) -> int:
        found = httpx.get(f"{self.url}/v1/stats/summary", timeout=10).json()
        return int(found["totals"]["stats"]["delivered"])


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Every process a test starts, stopped at the end whatever happened."""
    started: list[Process] = []
    yield started
    for process in started:
        process.end(signal.SIGKILL)


def split_by_host(log: Path) -> dict[str, list[bytes]]:
    hosts: dict[str, list[bytes]] = {}
    for line in log.read_bytes().splitlines(keepends=True):
        hosts.setdefault(host_key(line.decode()), []).append(line)
    return hosts


def merged_tenants(first: Path, second: Path, out: Path) -> Path:
    tenants: dict[str, dict[str, list[str]]] = {}
    for path in (first, second):
        for name, owned in tomllib.loads(path.read_text())["tenants"].items():
            mine = tenants.setdefault(name, {})
            for key, values in owned.items():
                mine[key] = sorted(set(mine.get(key, [])) | set(values))
    lines = []
    for name, owned in tenants.items():
        lines.append(f"[tenants.{name}]")
        lines += [
            f"{key} = {values!r}".replace("'", '"') for key, values in owned.items()
        ]
    out.write_text("\n".join(lines) + "\n")
    return out


class Host:
    """A mail host: its log files, growing, and where its collector spools."""

    def __init__(self, name: str, directory: Path, files: dict[str, list[bytes]]):
        self.name = name
        self.directory = directory
        directory.mkdir()
        self.spool = directory / "spool"
        self.content = {directory / f: lines for f, lines in files.items()}
        self.metrics_port = free_port()

    def write_part(self, part: int, parts: int) -> None:
        """Append the ``part``-th of ``parts`` slices of each file."""
        for path, lines in self.content.items():
            cut = [len(lines) * k // parts for k in range(parts + 1)]
            with path.open("ab") as fh:
                fh.write(b"".join(lines[cut[part] : cut[part + 1]]))

    def collect(self, central_url: str, config: Path) -> Process:
        argv = ["collect", "--to", central_url, "--spool", str(self.spool)]
        argv += ["--host", self.name, "--config", str(config)]
        argv += ["--metrics", f"127.0.0.1:{self.metrics_port}"]
        for path in self.content:
            argv += ["--follow", str(path)]
        return Process(argv, self.directory / "collect.log")

    def drained(self) -> bool:
        if not self.spool.exists():
            return False
        status = spool_status(self.spool)
        sizes = {str(p): p.stat().st_size for p in self.content}
        return status.backlog == 0 and status.offsets == sizes


def answers(store: Store) -> dict[str, Any]:
    timings = store.dovecot_timings(Scope(), ["tenant"])
    items = store.deliveries(DeliveryFilter(limit=1000, transport="lmtp")).items
    return {
        "summary": store.summary(Scope(), ["tenant"]).model_dump(),
        "traffic": store.traffic(Scope()).model_dump(),
        "rejects": store.reject_counts(Scope()),
        "attempts": store.data_range(Scope()).attempts,
        "dovecot": [(t.key, t.saved, t.failed) for t in timings],
        "joined": sum(1 for i in items if i.dovecot is not None),
    }


def test_two_collectors_survive_an_outage_of_the_central_service(
    tmp_path: Path, processes: list[Process]
) -> None:
    generated = tmp_path / "gen.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), str(generated), "--lines", "6000",
         "--seed", "5", "--hosts", "2"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    config = merged_tenants(
        SAMPLES / "tenants.toml",
        generated.with_name("gen.log.tenants.toml"),
        tmp_path / "fleet.toml",
    )
    by_host = split_by_host(generated)
    mx = Host(
        "mx1",
        tmp_path / "mx",
        {
            "mail.log": by_host["mx1"],
            "postfix.log": (SAMPLES / "postfix.log").read_bytes().splitlines(True),
        },
    )
    mda = Host(
        "mda1",
        tmp_path / "mda",
        {
            "mail.log": by_host["mx2"],
            "dovecot.log": (SAMPLES / "dovecot.log").read_bytes().splitlines(True),
        },
    )
    port, db = free_port(), tmp_path / "central.duckdb"
    for host in (mx, mda):
        host.write_part(0, 3)
    central = Central(db, config, port, tmp_path / "serve.log")
    processes.append(central.process)
    collectors = {h.name: h.collect(central.url, config) for h in (mx, mda)}
    processes.extend(collectors.values())
    wait(lambda: central.delivered() > 0, "the central store has deliveries")

    assert central.process.end() in (0, -signal.SIGTERM)  # the outage
    for host in (mx, mda):
        host.write_part(1, 3)
    time.sleep(1.0)
    assert collectors["mx1"].end(signal.SIGKILL) == -signal.SIGKILL
    collectors["mx1"] = mx.collect(central.url, config)
    processes.append(collectors["mx1"])
    wait(lambda: spool_status(mda.spool).backlog > 0, "batches wait in a spool")

    central = Central(db, config, port, tmp_path / "serve.log")
    processes.append(central.process)
    for host in (mx, mda):
        host.write_part(2, 3)
    wait(lambda: mx.drained() and mda.drained(), "both spools drained")
    scraped = httpx.get(f"http://127.0.0.1:{mda.metrics_port}/metrics", timeout=5)
    assert 'mailtriage_dovecot_deliveries_total{cause="none"' in scraped.text
    for process in collectors.values():
        assert process.end() == 0
    assert central.process.end() in (0, -signal.SIGTERM)

    settings = load_settings(config, {"ingest": {"year": 2026}})
    files = [str(p) for host in (mx, mda) for p in host.content]
    with DuckDBStore(tmp_path / "clean.duckdb") as clean:
        ingest_files(clean, settings, files)
        expected = answers(clean)
    with DuckDBStore(db) as fleet:
        assert answers(fleet) == expected
        sides = fleet.deliveries(DeliveryFilter(limit=1000, transport="lmtp")).items
        hosts = {i.dovecot.host for i in sides if i.dovecot is not None}
    assert expected["joined"] > 0
    assert "mda1" in hosts  # Postfix on mx1 joined to Dovecot logged on mda1
