"""The syslog receiver: message forms, RFC 6587 framing, real UDP and TCP sockets."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailtriage.app.ingest.live import IngestQueue
from mailtriage.app.ingest.syslog import (
    MAX_MESSAGE_BYTES,
    FrameDecoder,
    ListenAddress,
    SyslogListener,
    message_to_line,
    parse_listen_url,
)
from mailtriage.errors import ConfigError
from mailtriage.parsers.envelope import EnvelopeParser

NOW = 1_796_313_656.0  # 2026-12-03T16:00:56Z

SMTPD = "postfix/smtpd[6079]: connect from unknown[192.0.2.1]"

MESSAGES = [
    pytest.param(
        b"<22>Dec  3 16:00:56 mx1 " + SMTPD.encode(),
        "Dec  3 16:00:56 mx1 " + SMTPD,
        id="rfc3164-with-host",
    ),
    pytest.param(
        b"<22>Dec  3 16:00:56 " + SMTPD.encode(),
        "Dec  3 16:00:56 192.0.2.9 " + SMTPD,
        id="rfc3164-without-host-gets-peer",
    ),
    pytest.param(
        b"<22>2026-12-03T16:00:56.123+01:00 mx2 " + SMTPD.encode() + b"\n",
        "2026-12-03T16:00:56.123+01:00 mx2 " + SMTPD,
        id="rsyslog-forward-format",
    ),
    pytest.param(
        b"<22>1 2026-12-03T16:00:56Z mx3 postfix/smtpd 6079 - - connect from x[::1]",
        "<22>1 2026-12-03T16:00:56Z mx3 postfix/smtpd 6079 - - connect from x[::1]",
        id="rfc5424",
    ),
    pytest.param(
        b"<22>1 - - postfix/qmgr 7 - - \xef\xbb\xbfABC123: removed",
        "<22>1 2026-12-03T16:00:56.000000Z 192.0.2.9 postfix/qmgr 7 - - "
        "ABC123: removed",
        id="rfc5424-nil-time-and-host-bom",
    ),
    pytest.param(
        b"<22>1 2026-12-03T17:24:38.08Z mx-relay postfix/qmgr 811 - -  4B2: removed",
        "<22>1 2026-12-03T17:24:38.08Z mx-relay postfix/qmgr 811 - - 4B2: removed",
        id="rfc5424-from-rsyslog-template-leading-space",
    ),
    pytest.param(
        b'<22>1 2026-12-03T17:24:38Z mx4 postfix/qmgr 811 - [x@1 a="]"] 4B2: removed',
        '<22>1 2026-12-03T17:24:38Z mx4 postfix/qmgr 811 - [x@1 a="]"] 4B2: removed',
        id="rfc5424-structured-data-kept",
    ),
    pytest.param(
        b"<13>postfix/pickup[1]: 4B2: uid=0 from=<root>",
        "2026-12-03T16:00:56.000000Z 192.0.2.9 postfix/pickup[1]: 4B2: uid=0 "
        "from=<root>",
        id="rfc3164-no-timestamp",
    ),
]


@pytest.mark.parametrize(("message", "line"), MESSAGES)
def test_message_becomes_a_line_with_its_sending_host(
    message: bytes, line: str
) -> None:
    assert message_to_line(message, "192.0.2.9", NOW) == line


@pytest.mark.parametrize(
    ("message", "host"),
    [
        (b"<22>Dec  3 16:00:56 mx1 " + SMTPD.encode(), "mx1"),
        (b"<22>Dec  3 16:00:56 " + SMTPD.encode(), "192.0.2.9"),
        (b"<22>1 2026-12-03T16:00:56Z mx3 postfix/smtpd 6079 - - connect", "mx3"),
        (b"<22>2026-12-03T16:00:56+01:00 mx2 " + SMTPD.encode(), "mx2"),
    ],
)
def test_envelope_parser_reads_the_host_from_converted_lines(
    message: bytes, host: str
) -> None:
    line = message_to_line(message, "192.0.2.9", NOW)
    assert line is not None
    envelope = EnvelopeParser(reference_ts=NOW).parse(line)
    assert envelope is not None
    assert envelope.host == host
    assert envelope.program.startswith("postfix/")


@pytest.mark.parametrize("message", [b"", b"<13>", b"  \r\n", b"<13>\n"])
def test_empty_message_gives_no_line(message: bytes) -> None:
    assert message_to_line(message, "192.0.2.9", NOW) is None


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("udp://127.0.0.1:5514", ListenAddress("udp", "127.0.0.1", 5514)),
        ("tcp://[::1]:601", ListenAddress("tcp", "::1", 601)),
    ],
)
def test_listen_url_is_parsed(url: str, address: ListenAddress) -> None:
    assert parse_listen_url(url) == address
    assert str(parse_listen_url(url)) == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "udp://127.0.0.1", "tcp://:5514", "udp://h:notaport"]
)
def test_bad_listen_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="syslog listener"):
        parse_listen_url(url)


# --------------------------------------------------------------------- framing


def _octet(message: bytes) -> bytes:
    return str(len(message)).encode() + b" " + message


def test_decoder_splits_octet_counted_and_newline_frames_in_one_stream() -> None:
    stream = (
        _octet(b"<13>one\nwith newline inside")
        + b"<13>two\n"
        + _octet(b"<13>three")
        + b"2026-12-03T16:00:56Z mx1 four\n"
    )
    assert FrameDecoder().feed(stream) == [
        b"<13>one\nwith newline inside",
        b"<13>two",
        b"<13>three",
        b"2026-12-03T16:00:56Z mx1 four",
    ]


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(
        st.binary(min_size=1, max_size=40).map(
            lambda b: b"<13>" + b.replace(b"\n", b"")
        ),
        min_size=1,
        max_size=8,
    ),
    octet=st.lists(st.booleans(), min_size=8, max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_decoder_gives_the_same_messages_however_the_stream_is_cut(
    messages: list[bytes], octet: list[bool], cuts: list[int]
) -> None:
    stream = b"".join(
        _octet(m) if use_octet else m + b"\n"
        for m, use_octet in zip(messages, octet, strict=False)
    )
    decoder = FrameDecoder()
    out: list[bytes] = []
    start = 0
    for cut in sorted(min(c, len(stream)) for c in cuts):
        out += decoder.feed(stream[start:cut])
        start = max(start, cut)
    out += decoder.feed(stream[start:])
    out += decoder.finish()
    assert out == messages


def test_decoder_skips_oversized_frames_and_counts_them() -> None:
    big = b"<13>" + b"x" * (MAX_MESSAGE_BYTES + 10)
    decoder = FrameDecoder()
    got = decoder.feed(_octet(big) + b"<13>after\n" + big + b"\n" + b"<13>last\n")
    assert got == [b"<13>after", b"<13>last"]
    assert decoder.oversized == 2


def test_decoder_finish_returns_an_unterminated_last_line() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"<13>first\n<13>second") == [b"<13>first"]
    assert decoder.finish() == [b"<13>second"]


# --------------------------------------------------------------------- sockets


def _drain(queue: IngestQueue) -> list[str]:
    lines: list[str] = []
    while (chunk := queue.get(0.0)) is not None:
        lines += chunk.lines
    return lines


async def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_udp_listener_queues_datagrams_and_counts_drops_when_full() -> None:
    async def scenario() -> None:
        queue = IngestQueue(max_lines=5)
        drops: list[tuple[str, int]] = []
        listener = SyslogListener(
            parse_listen_url("udp://127.0.0.1:0"),
            queue,
            on_drop=lambda reason, n: drops.append((reason, n)),
        )
        await listener.start()
        assert listener.bound is not None
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for n in range(8):
                    sock.sendto(
                        f"<22>Dec  3 16:00:56 mx1 postfix/qmgr[1]: Q{n}: x".encode(),
                        listener.bound,
                    )
            await _wait_for(lambda: listener.received == 8)
        finally:
            await listener.stop()
        lines = _drain(queue)
        assert lines == [
            f"Dec  3 16:00:56 mx1 postfix/qmgr[1]: Q{n}: x" for n in range(5)
        ]
        assert listener.dropped == 3
        assert drops == [("queue_full", 1)] * 3

    asyncio.run(scenario())


def test_tcp_listener_takes_both_framings_from_one_connection() -> None:
    async def scenario() -> None:
        queue = IngestQueue(max_lines=100)
        listener = SyslogListener(parse_listen_url("tcp://127.0.0.1:0"), queue)
        await listener.start()
        assert listener.bound is not None
        try:
            _, writer = await asyncio.open_connection(*listener.bound)
            writer.write(
                _octet(b"<22>Dec  3 16:00:56 mx1 postfix/qmgr[1]: A1: removed")
            )
            writer.write(b"<22>Dec  3 16:00:57 mx2 postfix/qmgr[1]: A2: removed\r\n")
            writer.write(
                _octet(b"<22>1 2026-12-03T16:00:58Z mx3 postfix/qmgr 1 - - A3: removed")
            )
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            await _wait_for(lambda: queue.pending_lines == 3)
        finally:
            await listener.stop()
        hosts = [EnvelopeParser(reference_ts=NOW).parse(x) for x in _drain(queue)]
        assert [e.host if e else None for e in hosts] == ["mx1", "mx2", "mx3"]

    asyncio.run(scenario())


def test_tcp_listener_stops_reading_while_the_queue_is_full() -> None:
    async def scenario() -> None:
        queue = IngestQueue(max_lines=1000)
        listener = SyslogListener(parse_listen_url("tcp://127.0.0.1:0"), queue)
        await listener.start()
        assert listener.bound is not None
        line = b"<22>Dec  3 16:00:56 mx1 postfix/qmgr[1]: ABCDEF: removed" + b" " * 200
        total = 40_000  # about 10 MB: more than the socket buffers hold
        sent = 0
        try:
            _, writer = await asyncio.open_connection(*listener.bound)
            for _ in range(total):
                writer.write(line + b"\n")
                sent += 1
                try:
                    await asyncio.wait_for(writer.drain(), 0.5)
                except TimeoutError:
                    break  # the receiver pushes back
            # Held back: the sender could not write everything, and the queue
            # holds no more than its bound.
            assert sent < total
            assert queue.pending_lines <= queue.max_lines
            received: list[str] = []
            writer_task = asyncio.ensure_future(_finish(writer, line, total - sent))
            deadline = time.monotonic() + 30
            while len(received) < total and time.monotonic() < deadline:
                received += _drain(queue)
                await asyncio.sleep(0.005)
            await writer_task
        finally:
            await listener.stop()
        assert len(received) == total
        assert listener.dropped == 0

    asyncio.run(scenario())


async def _finish(writer: asyncio.StreamWriter, line: bytes, count: int) -> None:
    for _ in range(count):
        writer.write(line + b"\n")
        await writer.drain()
    writer.close()
    await writer.wait_closed()
