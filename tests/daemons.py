"""A mail lab: real Postfix and Dovecot on loopback, under test control.

``MailLab`` runs a private Postfix instance (its own config directory, queue and
``maillog_file``) in front of a private Dovecot (``dovecot -c FILE``) that stores
tenant mailboxes through LMTP, plus peers written here that stand for the rest of
the world: remote MX hosts that throttle or refuse (aiosmtpd), a slow LMTP path to
Dovecot, an MDA that is down. Nothing outside the lab directory is touched: no file in
/etc, no port below 1024, every process stopped by its pid.

    config = LabConfig(domains=["acme.example"], mailboxes=[Mailbox("a@acme.example")])
    with MailLab(config) as lab:
        lab.send("x@partner.example", ["a@acme.example"])
        lab.wait_until_quiet()
        text = lab.logs().postfix.read_text()

Facts this relies on (Debian 12, Postfix 3.7, Dovecot 2.3): Postfix writes its own log
only under ``maillog_file_prefixes`` and through the ``postlog`` service (postconf(5),
MAILLOG_README); Dovecot will not deliver as root, so mail is stored as the ``mail``
user (uid 8); retries happen on ``postqueue -f`` because backoff times are minutes
long unless ``retry_seconds`` is lowered.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

POSTFIX = Path("/usr/sbin/postfix")
POSTQUEUE = Path("/usr/sbin/postqueue")
DOVECOT = Path("/usr/sbin/dovecot")
LMTP_MODULE = Path("/usr/lib/dovecot/lmtp")
MAIL_USER = "mail"
DEAD_RESOLVER = "127.0.9.53"
# deliver_log_format with the fields Dovecot 2.3 can add to its save lines (times in
# milliseconds); Dovecot's default is "msgid=%m: %$".
DELIVER_LOG_FORMAT_TIMINGS = (
    "msgid=%m, from=%{from_envelope}, size=%p, delivery_time=%{delivery_time}, "
    "session_time=%{session_time}: %$"
)
# Replies of remote providers, in the style of the large ones (the names are made
# up): a rate limiter that closes the session, a reputation refusal, greylisting.
THROTTLE_REPLY = (
    "421 4.7.0 Try again later, closing connection: messages from 127.0.0.1 are "
    "temporarily rate limited due to unusual volume"
)
POLICY_REPLY = (
    "550 5.7.1 Service unavailable, client host [127.0.0.1] blocked using a "
    "reputation list; message rejected by policy"
)
GREYLIST_REPLY = (
    "450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, please try again later"
)
# A one-byte quota: any message exceeds it.
FULL_QUOTA = "*:storage=1B"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


def missing_requirements() -> str | None:
    """Why the lab cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the mail lab needs root (Postfix and Dovecot start as root)"
    for path, package in (
        (POSTFIX, "postfix"),
        (DOVECOT, "dovecot-core"),
        (LMTP_MODULE, "dovecot-lmtpd"),
    ):
        if not path.exists():
            return f"{path} not found: install the Debian package {package}"
    return None


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(address: str, port: int) -> bool:
    """Whether a TCP socket listens on ``address:port``, read from /proc/net/tcp
    (proc(5)) rather than by connecting, which each daemon would log."""
    packed = socket.inet_aton(address)[::-1].hex().upper()
    wanted = f"{packed}:{port:04X}"
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # 0A is TCP_LISTEN
                return True
    return False


def _wait_for_port(address: str, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(address, port):
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not listen on {address}:{port} in {timeout} s")


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (from /proc; zombies left for
    init to reap do not count)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # Fields after the parenthesised command: state, ppid, pgrp (proc(5)).
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def _stop_groups(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM the daemons ``pids`` and wait until their process groups are gone;
    SIGKILL what remains. Postfix's and Dovecot's masters lead their own process
    group (they call setsid) and stop their children on SIGTERM; a pid that leads
    no group any more is not signalled, so a reused pid is never hit."""
    for pid in pids:
        if pid in _group_members(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(map(_group_members, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for member in (m for pid in pids for m in _group_members(pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _run(argv: Sequence[str | Path]) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _start_daemon(argv: Sequence[str | Path], output: Path) -> None:
    """Run a command that forks a daemon. Its output goes to a file: a pipe would
    stay open in the daemon and keep the caller waiting for its end."""
    with output.open("ab") as out:
        done = subprocess.run(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        text = output.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {text}")


# --------------------------------------------------------------------------- peers


class _LoopThread:
    """One asyncio loop in a daemon thread that serves every peer of a lab."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Cancel what still runs (connections a peer is serving), then stop."""
        with contextlib.suppress(TimeoutError):
            self.call(_cancel_others(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


async def _cancel_others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class Peer(Protocol):
    """Something Postfix can be routed to (``transport_maps`` nexthop)."""

    @property
    def nexthop(self) -> str: ...

    def start(self, loop: _LoopThread, lab: MailLab) -> None: ...

    def stop(self, loop: _LoopThread) -> None: ...


@dataclass
class ReceivedMessage:
    """What a peer accepted."""

    mail_from: str
    rcpt_tos: list[str]
    size: int


class SmtpPeer:
    """An aiosmtpd server standing for a remote MX or an MDA shard.

    The reply attributes may be changed while the lab runs (a throttling provider that
    lets mail through later is ``peer.rcpt_reply = None`` before ``lab.flush()``).
    ``{rcpt}`` in a reply becomes the recipient. A reply whose code is 421 closes the
    connection afterwards, as RFC 5321 4.2.2 says a 421 server does.
    """

    def __init__(
        self,
        *,
        greeting_name: str = "mx.peer.example",
        address: str = "127.0.0.1",
        lmtp: bool = False,
        delay_seconds: float = 0.0,
        mail_reply: str | None = None,
        rcpt_reply: str | None = None,
        data_reply: str | None = None,
        rcpt_replies: Mapping[str, str] | None = None,
    ) -> None:
        self.greeting_name = greeting_name
        self.address = address
        self.port = free_port(address)
        self.lmtp = lmtp
        self.delay_seconds = delay_seconds
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.rcpt_replies = dict(rcpt_replies or {})
        self.received: list[ReceivedMessage] = []
        self._server: asyncio.AbstractServer | None = None

    @property
    def nexthop(self) -> str:
        if self.lmtp:
            return f"lmtp:inet:{self.address}:{self.port}"
        return f"smtp:[{self.address}]:{self.port}"

    def start(self, loop: _LoopThread, lab: MailLab) -> None:
        del lab
        self._server = loop.call(
            loop.loop.create_server(self._protocol, self.address, self.port)
        )

    def stop(self, loop: _LoopThread) -> None:
        if self._server is not None:
            self._server.close()
            loop.call(self._server.wait_closed())
            self._server = None

    def _protocol(self) -> SMTP:
        kind = LMTP if self.lmtp else SMTP
        return kind(_PeerHandler(self), hostname=self.greeting_name, ident="ESMTP")


def _closing(server: SMTP, reply: str, rcpt: str = "") -> str:
    """``reply`` with ``{rcpt}`` filled in; after a 421 the peer hangs up (RFC 5321
    4.2.2)."""
    if reply.startswith("421") and server.transport is not None:
        asyncio.get_running_loop().call_later(0.05, server.transport.close)
    return reply.replace("{rcpt}", rcpt)


class _PeerHandler:
    """aiosmtpd hooks that answer as the peer's attributes say."""

    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if self.peer.mail_reply:
            return _closing(server, self.peer.mail_reply)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        reply = self.peer.rcpt_replies.get(address.lower()) or self.peer.rcpt_reply
        if reply:
            return _closing(server, reply, address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        await asyncio.sleep(self.peer.delay_seconds)
        content = envelope.original_content or b""
        self.peer.received.append(
            ReceivedMessage(
                envelope.mail_from or "", list(envelope.rcpt_tos), len(content)
            )
        )
        if self.peer.data_reply:
            return _closing(server, self.peer.data_reply, ",".join(envelope.rcpt_tos))
        queued = uuid.uuid4().hex[:12].upper()
        if not self.peer.lmtp:
            return f"250 2.0.0 Ok: queued as {queued}"
        # LMTP answers once per accepted recipient after DATA (RFC 2033 4.2).
        return "\r\n".join(
            f"250 2.0.0 <{rcpt}> {queued} Saved" for rcpt in envelope.rcpt_tos
        )


class SlowLmtpProxy:
    """A TCP relay in front of Dovecot's LMTP listener that holds the replies to the
    end of DATA for ``delay_seconds``: a slow MDA path whose slowness Dovecot's own
    timings do not show."""

    def __init__(self, *, delay_seconds: float, address: str = "127.0.0.1") -> None:
        self.delay_seconds = delay_seconds
        self.address = address
        self.port = free_port(address)
        self._target: tuple[str, int] | None = None
        self._server: asyncio.AbstractServer | None = None

    @property
    def nexthop(self) -> str:
        return f"lmtp:inet:{self.address}:{self.port}"

    def start(self, loop: _LoopThread, lab: MailLab) -> None:
        self._target = ("127.0.0.1", lab.lmtp_port)
        self._server = loop.call(
            asyncio.start_server(self._serve, self.address, self.port)
        )

    def stop(self, loop: _LoopThread) -> None:
        if self._server is not None:
            self._server.close()
            loop.call(self._server.wait_closed())
            self._server = None

    async def _serve(
        self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        assert self._target is not None
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        data_ended = asyncio.Event()
        try:
            await asyncio.gather(
                self._client_to_server(client_r, server_w, data_ended),
                self._server_to_client(server_r, client_w, data_ended),
                return_exceptions=True,
            )
        finally:
            client_w.close()
            server_w.close()

    @staticmethod
    async def _client_to_server(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        data_ended: asyncio.Event,
    ) -> None:
        tail = b""
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
            # The end of DATA may share a segment with a pipelined command.
            if b"\r\n.\r\n" in tail + chunk:
                data_ended.set()
            tail = (tail + chunk)[-4:]
        writer.close()

    async def _server_to_client(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        data_ended: asyncio.Event,
    ) -> None:
        while chunk := await reader.read(65536):
            if data_ended.is_set():
                await asyncio.sleep(self.delay_seconds)
                data_ended.clear()
            writer.write(chunk)
            await writer.drain()
        writer.close()


class ClosedPort:
    """A loopback port that refuses connections: an MDA or MX that is down.

    The socket is bound but never listens, so the kernel answers RST and no other
    program can take the port while the lab runs.
    """

    def __init__(self, *, address: str = "127.0.0.1", lmtp: bool = True) -> None:
        self.address = address
        self.lmtp = lmtp
        self.port = 0
        self._sock: socket.socket | None = None

    @property
    def nexthop(self) -> str:
        if not self.port:
            raise RuntimeError("a ClosedPort has its port once the lab started it")
        if self.lmtp:
            return f"lmtp:inet:{self.address}:{self.port}"
        return f"smtp:[{self.address}]:{self.port}"

    def start(self, loop: _LoopThread, lab: MailLab) -> None:
        del loop, lab
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((self.address, 0))
        self.port = self._sock.getsockname()[1]

    def stop(self, loop: _LoopThread) -> None:
        del loop
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Mailbox:
    """A tenant mailbox.

    ``quota_rule`` is Dovecot's per-user ``quota_rule``; with ``FULL_QUOTA`` every
    message is refused at end of DATA (``*:storage=1`` would be one kilobyte: Dovecot
    reads a storage limit without unit as kilobytes). ``prefill_bytes`` stores mail
    before the lab starts, so that with a small quota the mailbox is already full and
    ``lmtp_rcpt_check_quota`` refuses it at RCPT. ``in_dovecot=False`` makes an address
    that Postfix accepts but Dovecot does not know (a stale recipient map).
    """

    address: str
    quota_rule: str | None = None
    prefill_bytes: int = 0
    in_dovecot: bool = True


@dataclass
class LabConfig:
    """What the lab serves.

    ``routes`` maps a domain or an address to a peer or to a Postfix
    ``transport:nexthop`` string (``transport_maps``); a route wins over the LMTP
    delivery to Dovecot. ``retry_seconds`` sets ``queue_run_delay`` and both backoff
    times: the default hour means deferred mail is retried only on ``flush()``, so
    that tests count attempts deterministically. ``queue_lifetime_seconds`` sets
    ``maximal_queue_lifetime`` and ``bounce_queue_lifetime``, after which a deferred
    message expires at its next attempt. ``postfix_extra`` and ``dovecot_extra`` add
    or override main.cf parameters and dovecot.conf lines.
    """

    domains: Sequence[str]
    mailboxes: Sequence[Mailbox]
    routes: Mapping[str, Peer | str] = field(default_factory=dict)
    sasl_users: Mapping[str, str] = field(default_factory=dict)
    hostname: str = "mx1.example.net"
    mynetworks: str = "127.0.0.1/32"
    submission: bool = False
    retry_seconds: int = 3600
    queue_lifetime_seconds: int | None = None
    message_size_limit: int = 10_240_000
    deliver_log_format: str | None = None
    postfix_extra: Mapping[str, str] = field(default_factory=dict)
    dovecot_extra: str = ""
    root: Path | None = None


TENANT_DOMAINS = ("acme.example", "globex.example", "initech.example")


def tenant_lab_config(**overrides: Any) -> LabConfig:
    """Three tenants with mailboxes in every state a test may want.

    acme.example: alice and dave have room; bob's quota is one byte, so every message
    is refused at end of DATA; carol is already over quota, refused at RCPT; ghost is
    known to Postfix but not to Dovecot (550 5.1.1 at RCPT). globex.example: hank, and
    support whose quota is full like bob's. initech.example: pat and sam. Any other
    address of these domains is refused by Postfix itself (``User unknown in virtual
    mailbox table``).
    """
    full = FULL_QUOTA
    boxes = [
        Mailbox("alice@acme.example"),
        Mailbox("bob@acme.example", quota_rule=full),
        Mailbox("carol@acme.example", quota_rule=full, prefill_bytes=4000),
        Mailbox("dave@acme.example"),
        Mailbox("ghost@acme.example", in_dovecot=False),
        Mailbox("hank@globex.example"),
        Mailbox("support@globex.example", quota_rule=full),
        Mailbox("pat@initech.example"),
        Mailbox("sam@initech.example"),
    ]
    return LabConfig(domains=TENANT_DOMAINS, mailboxes=boxes, **overrides)


@dataclass(frozen=True)
class LabLogs:
    """Where the daemons of a lab write."""

    postfix: Path
    dovecot: Path

    def text(self) -> tuple[str, str]:
        return _read(self.postfix), _read(self.dovecot)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class Submitted:
    """The outcome of one SMTP submission to the lab."""

    queue_id: str | None
    refused: dict[str, tuple[int, str]]
    message_id: str


def _postfix_main_cf(lab: MailLab) -> str:
    c = lab.config
    d = lab.dir
    domains = ", ".join(c.domains)
    settings = {
        "compatibility_level": "3.6",
        "queue_directory": d / "spool/postfix",
        "data_directory": d / "spool/postfix-data",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "myhostname": c.hostname,
        "mydomain": c.hostname.partition(".")[2] or c.hostname,
        "myorigin": "$myhostname",
        "mydestination": "",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mynetworks": c.mynetworks,
        "maillog_file": lab.logs().postfix,
        # maillog_file is refused outside these prefixes (postconf(5)).
        "maillog_file_prefixes": f"/var, /dev/stdout, {d / 'log'}",
        "alias_maps": "",
        "alias_database": "",
        "local_recipient_maps": "",
        "local_transport": "error:5.1.1 local delivery is not used here",
        "virtual_mailbox_domains": domains,
        "virtual_mailbox_maps": f"texthash:{d / 'postfix/vmailbox'}",
        "virtual_transport": f"lmtp:inet:127.0.0.1:{lab.lmtp_port}",
        "transport_maps": f"texthash:{d / 'postfix/transport'}",
        "smtpd_relay_restrictions": (
            "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
        ),
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "dovecot",
        "smtpd_sasl_path": d / "dovecot/run/auth-client",
        "smtpd_banner": "$myhostname ESMTP $mail_name",
        "biff": "no",
        "append_dot_mydomain": "no",
        "message_size_limit": c.message_size_limit,
        # Without these the lab would sleep: smtpd pauses after each rejected
        # command and cleanup throttles fast senders (postconf(5)).
        "smtpd_error_sleep_time": "0",
        "in_flow_delay": "0",
        "queue_run_delay": f"{c.retry_seconds}s",
        "minimal_backoff_time": f"{c.retry_seconds}s",
        "maximal_backoff_time": f"{c.retry_seconds}s",
        "smtp_connect_timeout": "5s",
        "lmtp_connect_timeout": "5s",
    }
    if c.queue_lifetime_seconds is not None:
        settings["maximal_queue_lifetime"] = f"{c.queue_lifetime_seconds}s"
        settings["bounce_queue_lifetime"] = f"{c.queue_lifetime_seconds}s"
    settings.update(c.postfix_extra)
    return "".join(f"{key} = {value}\n" for key, value in settings.items())


# Directory, owner, group, mode: Debian's /etc/postfix/postfix-files.
_QUEUE_TREE = [
    ("", "root", "root", 0o755),
    ("pid", "root", "root", 0o755),
    ("maildrop", "postfix", "postdrop", 0o730),
    ("public", "postfix", "postdrop", 0o710),
    *(
        (name, "postfix", "root", 0o700)
        for name in [
            "active",
            "bounce",
            "corrupt",
            "defer",
            "deferred",
            "flush",
            "hold",
            "incoming",
            "private",
            "saved",
            "trace",
        ]
    ),
]

# name, type, private, unpriv, chroot, wakeup, maxproc, command: master.cf(5).
# Only smtp runs chrooted (see MailLab._make_chroot).
_MASTER_SERVICES = """\
pickup     unix  n - n 60    1 pickup
cleanup    unix  n - n -     0 cleanup
qmgr       unix  n - n 300   1 qmgr
rewrite    unix  - - n -     - trivial-rewrite
bounce     unix  - - n -     0 bounce
defer      unix  - - n -     0 bounce
trace      unix  - - n -     0 bounce
verify     unix  - - n -     1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -     - proxymap
proxywrite unix  - - n -     1 proxymap
smtp       unix  - - y -     - smtp
relay      unix  - - n -     - smtp
showq      unix  n - n -     - showq
error      unix  - - n -     - error
retry      unix  - - n -     - error
discard    unix  - - n -     - discard
lmtp       unix  - - n -     - lmtp
anvil      unix  - - n -     1 anvil
scache     unix  - - n -     1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def _postfix_master_cf(lab: MailLab) -> str:
    lines = [f"127.0.0.1:{lab.smtp_port} inet n - n - - smtpd\n"]
    if lab.config.submission:
        lines.append(
            f"127.0.0.1:{lab.submission_port} inet n - n - - smtpd\n"
            "  -o syslog_name=postfix/submission\n"
            "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
        )
    return "".join(lines) + _MASTER_SERVICES


def _dovecot_conf(lab: MailLab) -> str:
    d = lab.dir / "dovecot"
    log = lab.logs().dovecot
    extra = lab.config.dovecot_extra
    if lab.config.deliver_log_format is not None:
        extra += f"\ndeliver_log_format = {lab.config.deliver_log_format}\n"
    return f"""\
protocols = lmtp
listen = 127.0.0.1
instance_name = {lab.instance}
base_dir = {d / "run"}
state_dir = {d / "state"}
log_path = {log}
info_log_path = {log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A failed login waits two seconds by default; tests should not.
auth_failure_delay = 0
# Dovecot refuses to store mail as root; the Debian 'mail' user owns the mailboxes.
first_valid_uid = {lab.mail_uid}
mail_location = maildir:~/Maildir
mail_plugins = quota
# A full mailbox is refused at RCPT instead of after the whole message is sent.
lmtp_rcpt_check_quota = yes
{extra}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d / "users"}
}}
userdb {{
  driver = passwd-file
  args = {d / "users"}
}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
  quota_rule = *:storage=100M
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lab.lmtp_port}
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
"""


def _dovecot_users(lab: MailLab) -> str:
    uid, gid = lab.mail_uid, lab.mail_gid
    lines = []
    for box in lab.config.mailboxes:
        if not box.in_dovecot:
            continue
        extra = f"userdb_quota_rule={box.quota_rule}" if box.quota_rule else ""
        home = lab.home(box.address)
        lines.append(f"{box.address}:{{PLAIN}}x:{uid}:{gid}::{home}::{extra}\n")
    for user, password in lab.config.sasl_users.items():
        lines.append(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{lab.dir}/sasl::\n")
    return "".join(lines)


def _route_value(route: Peer | str) -> str:
    return route if isinstance(route, str) else route.nexthop


# --------------------------------------------------------------------------- the lab


class MailLab:
    """A private Postfix and Dovecot, started and stopped by the test.

    ``start()`` starts the peers, writes the configuration under ``dir`` and starts
    Dovecot and Postfix (a tenth of a second); ``stop()`` stops them by pid (about a
    second, for Dovecot's master); ``close()`` also removes ``dir``; as a context
    manager it does both. Postfix's smtpd listens on 127.0.0.1:``smtp_port`` (and
    ``submission_port`` with ``submission=True``), Dovecot's LMTP on
    127.0.0.1:``lmtp_port``. ``send()`` submits mail over SMTP, ``flush()`` retries
    deferred mail, ``wait_until_quiet()`` waits for Postfix to finish, ``logs()``
    names the two log files, ``queue()`` lists the queue.
    """

    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.instance = f"maillab-{uuid.uuid4().hex[:8]}"
        self.dir = self._make_root(config.root)
        self.smtp_port = free_port()
        self.submission_port = free_port()
        self.lmtp_port = free_port()
        self.mail_uid = pwd.getpwnam(MAIL_USER).pw_uid
        self.mail_gid = grp.getgrnam(MAIL_USER).gr_gid
        self._loop: _LoopThread | None = None
        self._started: list[str] = []

    @staticmethod
    def _make_root(root: Path | None) -> Path:
        # Postfix and Dovecot drop privileges; their users must be able to walk to
        # the lab, which pytest's private 0700 temporary directories do not allow.
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="maillab-", dir="/tmp"))
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        return root

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> MailLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the peers, write the configuration, start Dovecot and Postfix."""
        self._start_peers()
        self._write_files()
        self._start_dovecot()
        self._start_postfix()

    def stop(self) -> None:
        """Stop Postfix, Dovecot and the peers (each by pid); safe to call twice.

        ``postfix stop`` (which logs that it stops, then signals the pid in the
        master's pid file) runs while Dovecot's master gets SIGTERM from the pid in
        its base_dir/master.pid, as ``dovecot stop`` would do; both take about a
        second. Whatever of either process group is left after the timeout is
        killed, by pid.
        """
        pids = {name: _read_pid(self._pid_files[name]) for name in self._started}
        postfix_stop = None
        if "postfix" in pids:
            postfix_stop = subprocess.Popen(
                [POSTFIX, "-c", self.dir / "postfix", "stop"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        dovecot = pids.get("dovecot")
        _stop_groups([dovecot] if dovecot else [], STOP_TIMEOUT_SECONDS)
        if postfix_stop is not None:
            try:
                postfix_stop.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                postfix_stop.kill()
                postfix_stop.wait()
        _stop_groups([p for p in pids.values() if p], STOP_TIMEOUT_SECONDS)
        self._started.clear()
        if self._loop is not None:
            for peer in self.peers():
                peer.stop(self._loop)
            self._loop.close()
            self._loop = None

    @property
    def _pid_files(self) -> dict[str, Path]:
        return {
            "postfix": self.dir / "spool/postfix/pid/master.pid",
            "dovecot": self.dir / "dovecot/run/master.pid",
        }

    def close(self, *, keep_dir: bool = False) -> None:
        """Stop everything and remove the lab directory (unless ``keep_dir``)."""
        self.stop()
        if not keep_dir and self.config.root is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ----------------------------------------------------------------- files

    def home(self, address: str) -> Path:
        local, _, domain = address.partition("@")
        return self.dir / "mail" / domain / local

    def logs(self) -> LabLogs:
        """Paths of the Postfix ``maillog_file`` and Dovecot's ``log_path``."""
        return LabLogs(self.dir / "log/postfix.log", self.dir / "log/dovecot.log")

    def _write_files(self) -> None:
        for sub in (
            "log",
            "postfix",
            "spool/postfix",
            "dovecot/run",
            "dovecot/state",
            "mail",
        ):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        pf = self.dir / "postfix"
        (pf / "main.cf").write_text(_postfix_main_cf(self))
        (pf / "master.cf").write_text(_postfix_master_cf(self))
        (pf / "vmailbox").write_text(
            "".join(f"{box.address} ok\n" for box in self.config.mailboxes)
        )
        (pf / "transport").write_text(
            "".join(
                f"{key} {_route_value(route)}\n"
                for key, route in self.config.routes.items()
            )
        )
        # Postfix waits until a configuration file is older than the current second
        # before reading it (it may still be being edited); backdate ours.
        past = time.time() - 60
        for path in pf.iterdir():
            os.utime(path, (past, past))
        (self.dir / "dovecot/dovecot.conf").write_text(_dovecot_conf(self))
        (self.dir / "dovecot/users").write_text(_dovecot_users(self))
        self._prepare_mailboxes()

    def _prepare_mailboxes(self) -> None:
        mail = self.dir / "mail"
        for box in self.config.mailboxes:
            if box.prefill_bytes:
                self._prefill(box)
        for path in [mail, *mail.rglob("*")]:
            os.chown(path, self.mail_uid, self.mail_gid)

    def _prefill(self, box: Mailbox) -> None:
        cur = self.home(box.address) / "Maildir/cur"
        cur.mkdir(parents=True, exist_ok=True)
        body = "x" * box.prefill_bytes
        name = f"{int(time.time())}.prefill.{self.config.hostname}:2,S"
        (cur / name).write_text(
            f"From: seed@{self.config.hostname}\nSubject: earlier mail\n\n{body}\n"
        )

    # ----------------------------------------------------------------- daemons

    @property
    def _startup_log(self) -> Path:
        return self.dir / "log/startup.log"

    def _make_queue(self) -> None:
        """Create the queue tree as post-install does (owners and modes from Debian's
        /etc/postfix/postfix-files) and mark it for a quick start: postfix-script then
        skips its integrity checks (post-install, postsuper, find(1)), half a second
        on every start."""
        postfix = pwd.getpwnam("postfix").pw_uid
        postdrop = grp.getgrnam("postdrop").gr_gid
        queue = self.dir / "spool/postfix"
        for name, uid, gid, mode in _QUEUE_TREE:
            path = queue / name
            path.mkdir(parents=True, exist_ok=True)
            os.chown(
                path,
                postfix if uid == "postfix" else 0,
                postdrop if gid == "postdrop" else 0,
            )
            path.chmod(mode)
        self._make_chroot(queue)
        data = self.dir / "spool/postfix-data"
        data.mkdir(mode=0o700, exist_ok=True)
        os.chown(data, postfix, 0)
        (queue / "quick-start").touch()

    def _make_chroot(self, queue: Path) -> None:
        """Give the chrooted smtp(8) client a resolver that never answers.

        The lab has no DNS of its own. Pointing smtp(8) at a loopback address where
        no name server listens makes every lookup fail temporarily, so mail to an
        unrouted remote domain defers with 4.4.3 (``Host or domain name not found
        ... try again``) whatever the machine's resolver says; peers are reached by
        [address] and need no lookup.
        """
        etc = queue / "etc"
        etc.mkdir(exist_ok=True)
        for name in ("services", "hosts", "nsswitch.conf", "host.conf", "localtime"):
            source = Path("/etc") / name
            if source.exists():
                shutil.copyfile(source.resolve(), etc / name)
        (etc / "resolv.conf").write_text(
            f"nameserver {DEAD_RESOLVER}\noptions timeout:1 attempts:1\n"
        )

    def _start_postfix(self) -> None:
        self._make_queue()
        self._started.append("postfix")
        _start_daemon([POSTFIX, "-c", self.dir / "postfix", "start"], self._startup_log)
        _wait_for_port("127.0.0.1", self.smtp_port, START_TIMEOUT_SECONDS, "smtpd")

    def _start_dovecot(self) -> None:
        self._started.append("dovecot")
        _start_daemon(
            [DOVECOT, "-c", self.dir / "dovecot/dovecot.conf"], self._startup_log
        )
        _wait_for_port("127.0.0.1", self.lmtp_port, START_TIMEOUT_SECONDS, "dovecot")

    def peers(self) -> list[Peer]:
        """The peers of the routes, each once (one peer may serve several domains)."""
        unique: dict[int, Peer] = {}
        for route in self.config.routes.values():
            if not isinstance(route, str):
                unique.setdefault(id(route), route)
        return list(unique.values())

    def _start_peers(self) -> None:
        self._loop = _LoopThread()
        for peer in self.peers():
            peer.start(self._loop, self)

    # ----------------------------------------------------------------- mail

    def send(
        self,
        mail_from: str,
        rcpts: Sequence[str],
        body: str = "Hello from the mail lab.\n",
        *,
        size: int | None = None,
        subject: str = "lab message",
        client_ip: str = "127.0.0.1",
        helo: str = "client.example",
        login: tuple[str, str] | None = None,
        submission: bool = False,
    ) -> Submitted:
        """Submit one message over SMTP from ``client_ip`` (any 127.x address).

        127.0.0.1 is in ``mynetworks`` and may relay; other addresses are clients on
        the internet, which may relay only after ``login`` (SASL through Dovecot, for
        a user of ``sasl_users``). Recipients refused at RCPT are returned in
        ``refused``; ``queue_id`` is None when every recipient was refused. ``size``
        pads the body to about that many bytes.
        """
        message = _message(mail_from, rcpts, body, size, subject)
        port = self.submission_port if submission else self.smtp_port
        with smtplib.SMTP(timeout=30, source_address=(client_ip, 0)) as smtp:
            smtp.connect("127.0.0.1", port)
            smtp.ehlo(helo)
            if login is not None:
                smtp.login(*login)
            return _transact(smtp, mail_from, rcpts, message)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -j`` lists it, one dict per message."""
        out = _run([POSTQUEUE, "-c", self.dir / "postfix", "-j"])
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        """Ask Postfix to retry every deferred message now (``postqueue -f``)."""
        _run([POSTQUEUE, "-c", self.dir / "postfix", "-f"])

    def wait_until_quiet(
        self,
        predicate: Callable[[str, str], bool] | None = None,
        *,
        timeout: float = 30.0,
        settle_seconds: float = 0.5,
    ) -> None:
        """Wait until ``predicate(postfix_log, dovecot_log)`` holds (if given), no
        message is in the incoming or active queue, and neither log has grown for
        ``settle_seconds``. Raises ``TimeoutError`` with the log tails otherwise."""
        deadline = time.monotonic() + timeout
        last: tuple[int, int] | None = None
        since = time.monotonic()
        while time.monotonic() < deadline:
            postfix, dovecot = self.logs().text()
            sizes = (len(postfix), len(dovecot))
            if sizes != last:
                last, since = sizes, time.monotonic()
            settled = time.monotonic() - since >= settle_seconds
            if settled and self._queue_idle() and _holds(predicate, postfix, dovecot):
                return
            time.sleep(0.05)
        postfix, dovecot = self.logs().text()
        raise TimeoutError(
            f"mail lab not quiet after {timeout} s\n--- postfix\n{postfix[-3000:]}"
            f"\n--- dovecot\n{dovecot[-2000:]}"
        )

    def _queue_idle(self) -> bool:
        busy = {"incoming", "active", "maildrop"}
        return not any(entry.get("queue_name") in busy for entry in self.queue())


def _holds(predicate: Callable[[str, str], bool] | None, pf: str, dc: str) -> bool:
    return predicate is None or predicate(pf, dc)


def _message(
    mail_from: str, rcpts: Sequence[str], body: str, size: int | None, subject: str
) -> EmailMessage:
    message = EmailMessage()
    domain = mail_from.rpartition("@")[2] or "lab.example"
    message["From"] = mail_from or f"MAILER-DAEMON@{domain}"
    message["To"] = ", ".join(rcpts)
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = f"<{uuid.uuid4().hex}@{domain}>"
    if size is not None and size > len(body):
        filler = "lorem ipsum dolor sit amet " * (size // 27 + 1)
        lines = [filler[i : i + 76] for i in range(0, size - len(body), 76)]
        body += "\n".join(lines) + "\n"
    message.set_content(body)
    return message


def _transact(
    smtp: smtplib.SMTP, mail_from: str, rcpts: Sequence[str], message: EmailMessage
) -> Submitted:
    message_id = str(message["Message-ID"])
    code, reply = smtp.mail(mail_from)
    if code != 250:
        refused = {r: (code, reply.decode()) for r in rcpts}
        return Submitted(None, refused, message_id)
    refused = {}
    for rcpt in rcpts:
        code, reply = smtp.rcpt(rcpt)
        if code not in (250, 251):
            refused[rcpt] = (code, reply.decode())
    if len(refused) == len(rcpts):
        smtp.rset()
        return Submitted(None, refused, message_id)
    code, reply = smtp.data(message.as_bytes())
    text = reply.decode()
    queue_id = text.rpartition("queued as ")[2].strip() if code == 250 else None
    return Submitted(queue_id or None, refused, message_id)
