"""A syslog receiver for fleets: ``--syslog udp://127.0.0.1:5514`` or ``tcp://...``.

Messages in RFC 3164 (BSD) and RFC 5424 form are turned into lines the envelope
parser reads, keeping the sending host written in the message; only where the
message names no host (RFC 3164 section 4.3.3 lets a sender leave it out) does the
peer's address stand in. Over TCP both framings of RFC 6587 are accepted, decided
per frame: octet counting (``LEN SP MSG``, section 3.4.1) when a frame starts with
digits and a space, otherwise a line ended by LF (non-transparent framing, 3.4.2).

A full ingest queue is handled as the transports allow: a TCP connection stops
being read (TCP flow control then holds the sender back), a UDP datagram has no way
back and is dropped and counted.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from loguru import logger

from mailtriage.app.ingest.live import Chunk, IngestQueue
from mailtriage.errors import ConfigError

# RFC 5425 asks receivers to take messages of at least 2048 octets and allows more;
# 64 KiB covers long Postfix reject texts and milter replies with room to spare.
MAX_MESSAGE_BYTES = 65_536

# How many lines a TCP connection hands to the queue at once.
TCP_CHUNK_LINES = 500

DropHook = Callable[[str, int], None]
"""Called with a reason (``queue_full``, ``oversized``) and a count of messages."""


@dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where one listener binds."""

    transport: str  # udp | tcp
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}://{host}:{self.port}"


def parse_listen_url(url: str) -> ListenAddress:
    """``udp://127.0.0.1:5514`` → ListenAddress; ConfigError names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("udp", "tcp"):
        raise ConfigError(f"syslog listener {url!r}: the scheme must be udp or tcp")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"syslog listener {url!r}: invalid port") from exc
    if not parts.hostname or port is None:
        raise ConfigError(f"syslog listener {url!r}: give a host and a port")
    return ListenAddress(parts.scheme, parts.hostname, port)


# ------------------------------------------------------------------ message → line

_PRI = re.compile(rb"<(\d{1,3})>")
# RFC 3164 section 4.1.2: "Mmm dd hh:mm:ss", day space-padded.
_BSD_TS = re.compile(r"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)? ")
# An RFC 3339 stamp as rsyslog's forwarding templates write in place of it.
_ISO_TS = re.compile(r"\d{4}-\d\d-\d\dT\S+ ")
_BOM = "\ufeff"


def message_to_line(message: bytes, peer: str, now: float | None = None) -> str | None:
    """One syslog message as a log line for the envelope parser; None if empty.

    RFC 5424 messages keep their form (the envelope parser reads it) with a NILVALUE
    host or time filled in; RFC 3164 messages lose the PRI and become the
    traditional ``Mmm dd hh:mm:ss host tag: msg`` line.
    """
    message = message.rstrip(b"\r\n\x00")
    pri = _PRI.match(message)
    body = message[pri.end() :] if pri else message
    text = body.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    if pri and text.startswith("1 "):
        return _rfc5424_line(message[: pri.end()].decode(), text, peer, now)
    return _rfc3164_line(text, peer, now)


def _rfc5424_line(pri: str, text: str, peer: str, now: float | None) -> str:
    # RFC 5424 section 6: VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID
    # SP MSGID SP STRUCTURED-DATA [SP MSG]
    fields = text.split(" ", 6)
    if len(fields) < 7:
        return pri + text
    version, stamp, host, app, procid, msgid, rest = fields
    if stamp == "-":
        stamp = _iso_now(now)
    if host == "-":
        host = peer
    if rest == "-" or rest.startswith("- "):
        # No STRUCTURED-DATA: the MSG follows. rsyslog's forwarding templates keep
        # the space that began the message of an RFC 3164 input; a log line has
        # no leading blanks to lose, so they go.
        rest = "- " + rest[2:].lstrip(" ").removeprefix(_BOM)
    else:
        rest = rest.replace(_BOM, "", 1)
    return f"{pri}{version} {stamp} {host} {app} {procid} {msgid} {rest}"


def _rfc3164_line(text: str, peer: str, now: float | None) -> str:
    stamp = _BSD_TS.match(text) or _ISO_TS.match(text)
    if stamp is None:
        # RFC 3164 section 4.3.3: no valid TIMESTAMP, so a relay adds its own time
        # and the sender's name; the whole message becomes the CONTENT.
        return f"{_iso_now(now)} {peer} {text}"
    head, rest = text[: stamp.end()], text[stamp.end() :]
    first = rest.split(" ", 1)[0]
    if first.endswith(":") or "[" in first:
        # The first word is the TAG (``postfix/smtpd[6079]:``): no HOSTNAME was sent.
        return f"{head}{peer} {rest}"
    return text


def _iso_now(now: float | None) -> str:
    instant = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return instant.isoformat(timespec="microseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------ TCP framing

_OCTET_COUNT = re.compile(rb"([1-9]\d{0,9}) ")
_DIGITS = re.compile(rb"\d{1,10}")


class FrameDecoder:
    """Splits a TCP byte stream into syslog messages, framing decided per frame.

    Oversized frames are skipped (octet counting) or cut at the next LF, and
    counted in ``oversized``.
    """

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.oversized = 0
        self._buf = bytearray()
        self._skip = 0  # bytes of an oversized octet-counted frame still to drop
        self._discarding_line = False

    def feed(self, data: bytes) -> list[bytes]:
        """Messages completed by ``data``, in order."""
        self._buf += data
        out: list[bytes] = []
        while self._buf:
            message = self._next()
            if message is None:
                break
            if message:
                out.append(message)
        return out

    def finish(self) -> list[bytes]:
        """At end of stream: a trailing unterminated line is a message too."""
        rest = bytes(self._buf)
        self._buf.clear()
        if self._skip or self._discarding_line or not rest.strip():
            return []
        return [rest]

    def _next(self) -> bytes | None:
        # None: need more bytes; b"": consumed something that is not a message.
        if self._skip:
            return self._drop_skipped()
        if self._discarding_line:
            return self._drop_to_newline()
        counted = _OCTET_COUNT.match(self._buf)
        if counted:
            return self._octet_counted(counted)
        digits = _DIGITS.match(self._buf)
        if digits and digits.end() == len(self._buf):
            return None  # could still become "LEN SP": wait for the next byte
        return self._line()

    def _octet_counted(self, counted: re.Match[bytes]) -> bytes | None:
        length = int(counted.group(1))
        start = counted.end()
        if length > self.max_bytes:
            self.oversized += 1
            del self._buf[:start]
            self._skip = length
            return b""
        if len(self._buf) < start + length:
            return None
        message = bytes(self._buf[start : start + length])
        del self._buf[: start + length]
        return message

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\n")
        if end < 0:
            if len(self._buf) > self.max_bytes:
                self.oversized += 1
                self._buf.clear()
                self._discarding_line = True
                return b""
            return None
        message = bytes(self._buf[:end])
        del self._buf[: end + 1]
        if len(message) > self.max_bytes:
            self.oversized += 1
            return b""
        return message

    def _drop_skipped(self) -> bytes:
        taken = min(self._skip, len(self._buf))
        del self._buf[:taken]
        self._skip -= taken
        return b""

    def _drop_to_newline(self) -> bytes:
        end = self._buf.find(b"\n")
        if end < 0:
            self._buf.clear()
            return b""
        del self._buf[: end + 1]
        self._discarding_line = False
        return b""


# ------------------------------------------------------------------ listeners


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, listener: SyslogListener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.listener.received_datagram(data, str(addr[0]))


class SyslogListener:
    """One UDP or TCP syslog endpoint feeding the ingest queue."""

    def __init__(
        self,
        address: ListenAddress,
        queue: IngestQueue,
        *,
        on_drop: DropHook | None = None,
    ) -> None:
        self.address = address
        self.queue = queue
        self.on_drop = on_drop
        self.source = f"syslog:{address}"
        self.received = 0
        self.dropped = 0
        self.bound: tuple[str, int] | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        """What health checks call this listener."""
        return f"syslog {self.address}"

    @property
    def running(self) -> bool:
        """True while the socket is open."""
        return self._udp is not None or self._tcp is not None

    async def start(self) -> None:
        """Bind and start receiving."""
        loop = asyncio.get_running_loop()
        host, port = self.address.host, self.address.port
        if self.address.transport == "udp":
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), local_addr=(host, port)
            )
            self._udp = transport
            self.bound = transport.get_extra_info("sockname")[:2]
        else:
            self._tcp = await asyncio.start_server(self._serve_tcp, host, port)
            self.bound = self._tcp.sockets[0].getsockname()[:2]
        logger.info("syslog listener started", address=str(self.address))

    async def stop(self) -> None:
        """Stop receiving; lines already handed to the queue stay there."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._tcp.wait_closed()
            self._tcp = None
        logger.info(
            "syslog listener stopped",
            address=str(self.address),
            received=self.received,
            dropped=self.dropped,
        )

    def received_datagram(self, data: bytes, peer: str) -> None:
        """One UDP datagram is one message (RFC 5426 section 3.1)."""
        line = message_to_line(data, peer)
        if line is None:
            return
        self.received += 1
        if not self.queue.offer(Chunk(self.source, [line], label=self.name)):
            self._drop("queue_full", 1)

    async def _serve_tcp(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = str(writer.get_extra_info("peername")[0])
        try:
            await self._read_stream(reader, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()

    async def _read_stream(self, reader: asyncio.StreamReader, peer: str) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(65_536):
            await self._enqueue(decoder.feed(data), peer)
            self._count_oversized(decoder)
        await self._enqueue(decoder.finish(), peer)

    async def _enqueue(self, messages: list[bytes], peer: str) -> None:
        lines = [line for m in messages if (line := message_to_line(m, peer))]
        self.received += len(lines)
        for start in range(0, len(lines), TCP_CHUNK_LINES):
            part = lines[start : start + TCP_CHUNK_LINES]
            # While this waits nothing more is read from the socket, so the
            # kernel's receive window closes and the sender is held back.
            await self.queue.put_async(Chunk(self.source, part, label=self.name))

    def _count_oversized(self, decoder: FrameDecoder) -> None:
        if decoder.oversized:
            self._drop("oversized", decoder.oversized)
            decoder.oversized = 0

    def _drop(self, reason: str, count: int) -> None:
        self.dropped += count
        if self.on_drop is not None:
            self.on_drop(reason, count)
        logger.debug("syslog message dropped", reason=reason, count=count)
