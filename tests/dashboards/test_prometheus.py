"""Every dashboard query and alert expression, evaluated by a real Prometheus.

A Prometheus (Debian's ``prometheus``) scrapes, every second, a scrape target on
loopback that has ingested mail logs, then the test evaluates through Prometheus's
HTTP API every query of every panel (with its variables resolved the way Grafana
resolves them) and every rule expression: each must parse and return a series.

The scrape target (the ``target`` fixture) is, in turn:

- ``service``: ``mailtriage serve`` itself, following the logs, scraped at its
  ``GET /metrics``;
- ``pipeline``: the logs run through LineParser, Assembler and a MetricsObserver in
  this process, exposed by a small HTTP server around ``MetricsObserver.render``
  (the metrics module alone, whatever the service does).

The logs are the bundled samples (real Postfix and Dovecot logs, with their tenants
file); where those are missing, a log written by bench/generate.py.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dashboard_queries import (
    RULES,
    dashboards,
    panel_queries,
    rules,
    substitute,
    variable_queries,
    with_bool,
)

from mailtriage.app.metrics import MetricsObserver
from mailtriage.app.settings import Settings, load_settings

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
# What Grafana would put in for its own variables at a 1 s scrape interval.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}
BATCH_LINES = 5000
WAIT_SECONDS = 40.0


# ------------------------------------------------------------------ the logs

GENERATOR = REPO / "bench" / "generate.py"
GENERATED_LINES = 20_000


@pytest.fixture(scope="module")
def mail_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path]:
    """The logs to ingest and the config file naming their tenants: the bundled
    samples, or where they are missing a log written by bench/generate.py."""
    logs = sorted(SAMPLES.glob("*.log"))
    if logs and (SAMPLES / "tenants.toml").is_file():
        return logs, SAMPLES / "tenants.toml"
    log = tmp_path_factory.mktemp("generated") / "mail.log"
    subprocess.run(
        [sys.executable, str(GENERATOR), str(log), "--lines", str(GENERATED_LINES)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return [log], log.with_name("mail.log.tenants.toml")


def ingest(logs: list[Path], settings: Settings) -> MetricsObserver:
    """Run ``logs`` through LineParser, Assembler and a MetricsObserver."""
    from mailtriage.parsers.assembler import Assembler
    from mailtriage.parsers.line import LineParser
    from mailtriage.parsers.tenants import TenantMap

    observer = MetricsObserver.from_settings(
        settings, sources=[str(path) for path in logs]
    )
    tenants = TenantMap.from_settings(settings.tenants)
    for path in logs:
        parser = LineParser()
        assembler = Assembler(tenants)
        with path.open(encoding="utf-8", errors="replace") as lines:
            for count, raw in enumerate(lines, 1):
                env, record = parser.parse(raw)
                assembler.feed(env, record, raw)
                if count % BATCH_LINES == 0:
                    observer.observe(assembler.take())
        assembler.close_all()
        observer.observe(assembler.take())
        observer.observe_source(str(path))
        observer.observe_write_seconds(0.004)
    observer.set_lag(0.0)
    return observer


# ----------------------------------------------------------- scrape targets


@dataclass(frozen=True)
class Target:
    """What Prometheus scrapes: its ``host:port``, and its exposition right now."""

    address: str
    exposition: Callable[[], str]


class _MetricsHandler(BaseHTTPRequestHandler):
    observer: MetricsObserver

    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body, content_type = self.observer.render(self.headers.get("Accept"))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # Prometheus scrapes every second; the test output stays quiet.


def serve_pipeline(logs: list[Path], config: Path) -> Iterator[Target]:
    """The logs through the metrics module alone, behind a small HTTP server."""
    observer = ingest(logs, load_settings(config))
    handler = type("Handler", (_MetricsHandler,), {"observer": observer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Target(
            f"127.0.0.1:{server.server_address[1]}",
            lambda: observer.render()[0].decode(),
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve_service(logs: list[Path], config: Path, home: Path) -> Iterator[Target]:
    """``mailtriage serve`` following the logs, once it has committed them all."""
    address = f"127.0.0.1:{free_port()}"
    host, port = address.split(":")
    follow = [arg for log in logs for arg in ("--follow", str(log))]
    output = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-c", "from mailtriage.app.cli import main; main()",
            "serve", "--db", str(home / "mailtriage.duckdb"), "--config", str(config),
            *follow, "--host", host, "--port", port,
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://{address}"
    lines = sum(log.read_bytes().count(b"\n") for log in logs)
    try:
        wait_until(
            lambda: _committed(proc, url, home / "serve.log") >= lines,
            "mailtriage serve to commit the logs",
        )
        yield Target(address, lambda: httpx.get(f"{url}/metrics", timeout=10).text)
    finally:
        stop(proc)
        output.close()


def _committed(proc: subprocess.Popen[bytes], url: str, log: Path) -> int:
    if proc.poll() is not None:
        pytest.fail(f"mailtriage serve exited: {log.read_text()[-2000:]}")
    try:
        answer = httpx.get(f"{url}/readyz", timeout=2).json()
    except (httpx.TransportError, ValueError):
        return 0
    committed: int = answer.get("lines_committed", 0)
    return committed


@pytest.fixture(scope="module", params=["service", "pipeline"])
def target(
    request: pytest.FixtureRequest,
    mail_logs: tuple[list[Path], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    logs, config = mail_logs
    if request.param == "service":
        yield from serve_service(logs, config, tmp_path_factory.mktemp("serve"))
    else:
        yield from serve_pipeline(logs, config)


# --------------------------------------------------------------- Prometheus


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, what: str, seconds: float = WAIT_SECONDS) -> Any:
    """Call ``check`` until it returns something true, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"gave up after {seconds:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def prometheus(
    target: Target, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of a Prometheus scraping ``target`` with the rules loaded."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "prometheus not found: install Debian's prometheus (scripts/setup.sh)"
        )
    home = tmp_path_factory.mktemp("prometheus")
    (home / "rules.yml").write_text(RULES.read_text())
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(home / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "mailtriage",
                "static_configs": [{"targets": [target.address]}],
            }
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    log = (home / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={address}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{address}"
    try:
        wait_until(lambda: _ready(proc, url, home), "Prometheus to be ready")
        yield url
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process we started, SIGKILL if it has not ended in 20 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _ready(proc: subprocess.Popen[bytes], url: str, home: Path) -> bool:
    if proc.poll() is not None:
        pytest.fail(
            f"prometheus exited: {(home / 'prometheus.log').read_text()[-2000:]}"
        )
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def query(url: str, expr: str) -> dict[str, Any]:
    """Prometheus's answer to an instant query, as JSON."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(scope="module")
def scraped(prometheus: str) -> str:
    """``prometheus`` once it holds enough scrapes for rates and has run every rule."""

    def enough() -> bool:
        answer = query(prometheus, "count_over_time(mailtriage_build_info[1m])")
        result = answer.get("data", {}).get("result", [])
        return bool(result) and float(result[0]["value"][1]) >= 5

    def rules_ran() -> bool:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]
        return all(
            rule.get("lastEvaluation", "").startswith("2")
            and rule["health"] != "unknown"
            for group in groups["groups"]
            for rule in group["rules"]
        )

    wait_until(enough, "five scrapes of the target")
    wait_until(rules_ran, "every rule to be evaluated")
    return prometheus


# -------------------------------------------------------------------- tests


def label_values(url: str, selector: str, label: str) -> list[str]:
    """What Grafana's ``label_values(selector, label)`` gives."""
    response = httpx.get(
        f"{url}/api/v1/series", params={"match[]": selector}, timeout=10
    )
    series = response.json()["data"]
    return sorted({s[label] for s in series if label in s})


def regex_of(values: list[str]) -> str:
    """A multi-value variable as Grafana writes it into a PromQL regex."""
    escaped = [re.escape(v).replace("\\", "\\\\") for v in values]
    return "(" + "|".join(escaped) + ")"


def resolve_variables(url: str, board: dict[str, Any]) -> dict[str, str]:
    values = dict(GRAFANA_INTERVALS)
    for name, selector, label in variable_queries(board):
        found = label_values(url, substitute(selector, values), label)
        assert found, f"variable ${name} has no values"
        values[name] = regex_of(found)
    return values


def evaluate(url: str, expr: str) -> str | None:
    """None when ``expr`` parses and returns a series, else what went wrong."""
    answer = query(url, expr)
    if answer.get("status") != "success":
        return f"{answer.get('errorType')}: {answer.get('error')}"
    if not answer["data"]["result"]:
        return "no series"
    return None


def test_every_panel_query_returns_series(scraped: str) -> None:
    failures = []
    checked = 0
    for name, board in dashboards().items():
        values = resolve_variables(scraped, board)
        for title, expr in panel_queries(board):
            problem = evaluate(scraped, substitute(expr, values))
            checked += 1
            if problem:
                failures.append(f"{name} / {title}: {problem}: {expr}")

    assert failures == []
    assert checked > 50


def test_every_rule_expression_returns_series(scraped: str) -> None:
    failures = []
    for rule in rules():
        expr = with_bool(rule["expr"]) if "alert" in rule else rule["expr"]
        problem = evaluate(scraped, expr)
        if problem:
            failures.append(f"{rule.get('alert') or rule['record']}: {problem}")

    assert failures == []


def test_prometheus_evaluates_every_rule_without_error(scraped: str) -> None:
    groups = httpx.get(f"{scraped}/api/v1/rules", timeout=5).json()["data"]["groups"]

    health = {
        rule["name"]: (rule["health"], rule.get("lastError", ""))
        for group in groups
        for rule in group["rules"]
    }

    assert len(health) == len(rules())
    assert {name: h for name, h in health.items() if h[0] != "ok"} == {}


def test_exemplars_carry_queue_ids_into_prometheus(scraped: str) -> None:
    now = time.time()
    response = httpx.get(
        f"{scraped}/api/v1/query_exemplars",
        params={
            "query": "mailtriage_final_delivery_seconds_bucket",
            "start": now - 300,
            "end": now + 60,
        },
        timeout=10,
    )

    exemplars = [e for series in response.json()["data"] for e in series["exemplars"]]
    assert exemplars
    assert all(
        re.fullmatch(r"[0-9A-Za-z]+", e["labels"]["queue_id"]) for e in exemplars
    )


def test_scraped_series_match_the_exposition(scraped: str, target: Target) -> None:
    exposed = [
        line
        for line in target.exposition().splitlines()
        if line and not line.startswith("#")
    ]

    answer = query(
        scraped, 'count({job="mailtriage",__name__=~"mailtriage_.+|lmtp_.+"})'
    )

    assert float(answer["data"]["result"][0]["value"][1]) == len(exposed)


def test_evaluation_tells_an_empty_or_broken_query(scraped: str) -> None:
    assert evaluate(scraped, "sum(rate(mailtriage_no_such_metric_total[1m]))") == (
        "no series"
    )
    assert (evaluate(scraped, "sum(rate(lmtp_delivery_total[1m])") or "").startswith(
        "bad_data"
    )
