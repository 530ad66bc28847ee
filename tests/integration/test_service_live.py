"""Live ingest from real daemons into a running service, checked through its API.

1. Real Postfix and Dovecot (the mail lab of tests/daemons.py) write their own log
   files; a ``mailtriage serve`` process follows both; mail is sent; the API reports
   each recipient's outcome, the cause, and the Dovecot side of the LMTP delivery.
2. A real rsyslog (Debian's ``rsyslogd``, on a private socket and private ports)
   receives Postfix lines as syslog(3) sends them and forwards them over TCP with
   octet counting (RFC 5424), over TCP with newline framing and over UDP; the
   service's syslog listener takes each, and the API shows the message under the
   host name rsyslog wrote into it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemons import MailLab
from service_checks import REPO, serving

from mailtriage.app.settings import load_settings

pytestmark = pytest.mark.daemons

MAILTRIAGE = Path(sys.executable).with_name("mailtriage")
RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
TENANTS = """\
[tenants.acme]
domains = ["acme.example"]

[tenants.globex]
domains = ["globex.example"]

[tenants.initech]
domains = ["initech.example"]
"""


def _free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout} s"
        time.sleep(0.1)


# ------------------------------------------------------------ followed log files


@pytest.fixture
def serve_lab(mail_lab: MailLab, tmp_path: Path) -> Iterator[str]:
    """``mailtriage serve`` following the lab's two log files; its base URL."""
    config = tmp_path / "tenants.toml"
    config.write_text(TENANTS)
    port = _free_port()
    logs = mail_lab.logs()
    argv = [str(MAILTRIAGE), "serve", "--db", str(tmp_path / "lab.duckdb")]
    argv += ["--config", str(config), "--port", str(port)]
    argv += ["--follow", str(logs.postfix), "--follow", str(logs.dovecot)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILTRIAGE_")}
    env["MAILTRIAGE_INGEST__FOLLOW_POLL_SECONDS"] = "0.1"
    env["MAILTRIAGE_INGEST__BATCH_SECONDS"] = "0.2"
    with (tmp_path / "serve.err").open("wb") as err:
        proc = subprocess.Popen(argv, env=env, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: _healthy(url, proc), 30, "serve answers")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _healthy(url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "mailtriage serve exited"
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_mail_sent_through_postfix_shows_in_the_api(
    mail_lab: MailLab, serve_lab: str
) -> None:
    sent = mail_lab.send(
        "sender@partner.example",
        ["alice@acme.example", "bob@acme.example", "hank@globex.example"],
        client_ip="127.0.3.9",
    )
    assert sent.queue_id is not None
    mail_lab.wait_until_quiet(lambda pf, dc: f"{sent.queue_id}: removed" in pf)

    def outcomes() -> dict[str, dict[str, Any]]:
        items = httpx.get(
            f"{serve_lab}/v1/deliveries",
            params={"queue_id": sent.queue_id, "final": "true"},
            timeout=5,
        ).json()["items"]
        found = {i["recipient"]: i for i in items}
        return found if len(found) == 3 else {}

    final = _until(outcomes, 30, "three final outcomes in the API")
    assert final["alice@acme.example"]["status"] == "sent"
    assert final["alice@acme.example"]["dovecot"]["status"] == "saved"
    assert final["hank@globex.example"]["tenant"] == "globex"
    # bob's quota is one byte: Dovecot refuses the message at the end of DATA.
    assert final["bob@acme.example"]["status"] == "bounced"
    assert final["bob@acme.example"]["cause"] == "quota_exceeded"
    trace = httpx.get(f"{serve_lab}/v1/messages/{sent.queue_id}", timeout=5).json()
    message = trace["messages"][0]["message"]
    assert message["message_id"].strip("<>") == sent.message_id.strip("<>")


# ------------------------------------------------------------------- rsyslog

# rsyslog's own templates (rsyslog.conf(5)): RFC 5424 and the traditional
# forwarding format with an RFC 3339 stamp.
FORWARDS = {
    "tcp-octet-counted-rfc5424": (
        "tcp",
        'protocol="tcp" TCP_Framing="octet-counted" '
        'template="RSYSLOG_SyslogProtocol23Format"',
    ),
    "tcp-newline-rfc3164": (
        "tcp",
        'protocol="tcp" template="RSYSLOG_ForwardFormat"',
    ),
    "udp-rfc3164": ("udp", 'protocol="udp" template="RSYSLOG_ForwardFormat"'),
}

_LINE = re.compile(r"\S+ \S+ \S+ \S+ (postfix/[\w/-]+)\[(\d+)\]: (.*)")


def _sample_message() -> tuple[list[tuple[str, str, str]], str, str]:
    """(program, pid, message) of every Postfix line of one sample message
    delivered over LMTP, its queue ID and one of its recipients."""
    lines = (REPO / "samples" / "postfix.log").read_text().splitlines()
    saved = next(
        m
        for line in lines
        if (m := re.search(r"(\w+): to=<([^>]+)>, relay=127.*status=sent", line))
    )
    queue_id, recipient = saved.groups()
    mine = [line for line in lines if f" {queue_id}: " in line]
    frames = [g for line in mine if (g := _match(line))]
    assert len(frames) == len(mine) >= 4
    return frames, queue_id, recipient


def _match(line: str) -> tuple[str, str, str] | None:
    found = _LINE.match(line)
    return None if found is None else (found[1], found[2], found[3])


def _rsyslog_conf(work: Path, sock: Path, port: int, options: str) -> str:
    # rsyslog cuts the program name at a slash (postfix/qmgr becomes postfix, the
    # APP-NAME of RFC 5424) unless told otherwise; the README says so too.
    return f"""\
global(workDirectory="{work}" localHostName="mx-relay"
       parser.permitSlashInProgramName="on")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}")
action(type="omfwd" target="127.0.0.1" port="{port}" {options})
"""


@pytest.fixture
def rsyslog_dir() -> Iterator[Path]:
    if not Path(RSYSLOGD).exists():
        pytest.skip("rsyslogd not found: install the Debian package rsyslog")
    # rsyslog may drop privileges; a directory under /tmp it can always reach.
    path = Path(f"/tmp/mailtriage-rsyslog-{os.getpid()}-{time.monotonic_ns()}")
    path.mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("forward", sorted(FORWARDS))
def test_rsyslog_forwards_postfix_lines_to_the_syslog_listener(
    tmp_path: Path, rsyslog_dir: Path, forward: str
) -> None:
    transport, options = FORWARDS[forward]
    port = _free_port(socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM)
    settings = load_settings(
        REPO / "samples" / "tenants.toml",
        {
            "store": {"db": str(tmp_path / "syslog.duckdb")},
            "ingest": {
                "syslog": [f"{transport}://127.0.0.1:{port}"],
                "batch_seconds": 0.2,
            },
        },
    )
    frames, queue_id, recipient = _sample_message()
    sock = rsyslog_dir / "log.sock"
    conf = rsyslog_dir / "rsyslog.conf"
    (rsyslog_dir / "work").mkdir()
    conf.write_text(_rsyslog_conf(rsyslog_dir / "work", sock, port, options))
    pidfile = rsyslog_dir / "rsyslogd.pid"
    with serving(settings) as served:
        daemon = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(conf), "-i", str(pidfile)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _until(sock.exists, 10, "rsyslog's socket")
            _send_as_syslog3(sock, frames)
            items = _until(
                lambda: _deliveries(served.url, queue_id), 20, "the forwarded message"
            )
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    assert {i["host"] for i in items} == {"mx-relay"}
    assert recipient in {i["recipient"] for i in items}
    assert any(i["status"] == "sent" for i in items)


def _send_as_syslog3(sock: Path, frames: list[tuple[str, str, str]]) -> None:
    """What syslog(3) writes to the log socket: ``<PRI>Mmm dd hh:mm:ss tag: msg``
    (facility mail, level info: PRI 22)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
        for program, pid, message in frames:
            stamp = time.strftime("%b %e %H:%M:%S")
            client.sendto(
                f"<22>{stamp} {program}[{pid}]: {message}".encode(), str(sock)
            )
            time.sleep(0.01)


def _deliveries(url: str, queue_id: str) -> list[dict[str, Any]]:
    """The attempts of ``queue_id``, once one of them is ``sent``."""
    items: list[dict[str, Any]] = httpx.get(
        f"{url}/v1/deliveries", params={"queue_id": queue_id}, timeout=5
    ).json()["items"]
    return items if any(i["status"] == "sent" for i in items) else []
