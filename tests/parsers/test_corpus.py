"""Every line of every file of the shared corpus goes through the parsers.

What counts as a Postfix or Dovecot line here:

- a line with an envelope whose program ``family_name`` reads as postfix or dovecot;
- a line without an envelope that is still clearly one of theirs: a syslog tag with no
  stamp (``postfix/smtpd[123]: ...``, as Postfix's documentation quotes lines), a
  message whose sidecar names the daemon (postfix-grok-patterns, msimerson), a message
  that starts with a Dovecot process prefix (``imap-login: ...``), or one sshguard
  attributes to Postfix or Dovecot.

Not lines: the grok sub-pattern tests (``POSTFIX_TLS_FEATURES`` and the like test a
fragment of a message) and the tails of records a fixture broke over two lines.

What does not parse, and which sidecar fields we read differently, is listed with the
reason in ``data/corpus_exceptions.txt``; the tests fail when either list grows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from mailtriage.app.commands.parse import open_lines
from mailtriage.parsers.line import LineParser, family_name
from mailtriage.parsers.records import Envelope, Record, Unparsed

EXCEPTIONS = Path(__file__).parent / "data" / "corpus_exceptions.txt"
# modoboa's fixture starts every line with a %-format placeholder for the date.
MODOBOA_DAY = "Jan 10"
# Grok patterns that test a fragment of a message, not a whole one.
GROK_FRAGMENTS = frozenset(
    ("TLS_FEATURES", "COMMAND_COUNTER_DATA", "DELAYS", "RELAY", "KEYVALUE")
)
# A syslog tag without stamp or host: "postfix/smtpd[32297]: ...", "scorpion
# postfix/smtp[9144]: ..." (host and tag), "postfix/postfix-script: fatal: ...".
TAG_ONLY = re.compile(r"(?:[\w.-]+ )?((?:postfix|dovecot)[\w./-]*)(?:\[(\d+)\])?: (.*)")
DOVECOT_PREFIX = re.compile(r"(?:[a-z0-9]+-login|auth|auth-worker|pam_unix)[:(]")


@dataclass(slots=True)
class Result:
    """One corpus line and what the parsers made of it."""

    file: str
    line: str
    family: str | None  # postfix, dovecot, other, or None when not a line of ours
    env: Envelope | None
    record: Record
    expects: list[dict[str, Any]]


def corpus_lines(corpus: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(corpus.glob("*.log")):
        for line in open_lines(str(path)):
            if line:
                yield path.name, line


def sidecars(corpus: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Expectations by (file, line); alternatives flattened into a list."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(corpus.glob("*.expect.jsonl")):
        log = path.name.replace(".expect.jsonl", ".log")
        for text in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(text)
            expect = item["expect"]
            found[(log, item["line"])] = expect.get("_alternatives", [expect])
    return found


def without_envelope(
    parser: LineParser, file: str, line: str, expects: list[dict[str, Any]]
) -> tuple[str | None, Record]:
    """Family and record of a line that has no envelope, when it is one of ours."""
    tag = TAG_ONLY.fullmatch(line)
    if tag is not None:
        return family_name(tag[1]), parser.parse_message(tag[1], tag[3])
    for expect in expects:
        grok = re.fullmatch(r"\^%\{POSTFIX_(\w+)\}\$?", expect.get("grok_pattern", ""))
        if grok is not None and grok[1] not in GROK_FRAGMENTS:
            service = (
                grok[1].lower().replace("_", "-").replace("script", "postfix-script")
            )
            return "postfix", parser.parse_message(f"postfix/{service}", line)
        program = str(expect.get("name_or_type", "")).split(",")[0]
        if program.startswith("postfix/"):
            return "postfix", parser.parse_message(program, line)
        attack = expect.get("sshguard_attack", {})
        if attack.get("service") == 260:
            return "postfix", parser.parse_message("postfix/smtpd", line)
        if attack.get("service") == 210:
            return "dovecot", parser.parse_message("", line)
    if DOVECOT_PREFIX.match(line):
        return "dovecot", parser.parse_message("", line)
    return None, Unparsed(reason="envelope", shape="", text=line)


@cache
def results(corpus: Path) -> tuple[Result, ...]:
    expects = sidecars(corpus)
    out: list[Result] = []
    parser = LineParser(reference_ts=1.8e9)
    for file, raw in corpus_lines(corpus):
        line = raw.replace("%(day)s", MODOBOA_DAY)
        wanted = expects.get((file, raw), [])
        env, record = parser.parse(line)
        if env is not None:
            family: str | None = family_name(env.program)
        else:
            family, record = without_envelope(parser, file, line, wanted)
        out.append(Result(file, raw, family, env, record, wanted))
    return tuple(out)


def exceptions(kind: str) -> set[tuple[str, ...]]:
    """Entries of one kind from the exceptions file (tab-separated, # comments)."""
    entries = set()
    for text in EXCEPTIONS.read_text(encoding="utf-8").splitlines():
        if text and not text.startswith("#"):
            fields = tuple(text.split("\t"))
            if fields[0] == kind:
                entries.add(fields[1:])
    return entries


def share_parsed(corpus: Path, family: str) -> tuple[int, int]:
    lines = [r for r in results(corpus) if r.family == family]
    return sum(r.record.kind != "unparsed" for r in lines), len(lines)


# ------------------------------------------------------------------ coverage


def test_corpus_postfix_lines_parse_at_least_99_percent(corpus_dir: Path) -> None:
    parsed, total = share_parsed(corpus_dir, "postfix")
    assert total > 7_000
    assert parsed / total >= 0.99, f"{parsed} of {total} Postfix lines parsed"


def test_corpus_dovecot_lines_parse_at_least_99_percent(corpus_dir: Path) -> None:
    parsed, total = share_parsed(corpus_dir, "dovecot")
    assert total > 2_400
    assert parsed / total >= 0.99, f"{parsed} of {total} Dovecot lines parsed"


def test_corpus_unparsed_lines_are_the_listed_exceptions(corpus_dir: Path) -> None:
    unparsed = {
        (r.file, r.line)
        for r in results(corpus_dir)
        if r.family in ("postfix", "dovecot") and r.record.kind == "unparsed"
    }
    assert sorted(unparsed - exceptions("unparsed")) == []


def test_corpus_lines_never_hit_a_parser_error(corpus_dir: Path) -> None:
    errors = [
        r.line
        for r in results(corpus_dir)
        if isinstance(r.record, Unparsed) and r.record.reason == "error"
    ]
    assert errors == []


def test_corpus_every_line_is_read(corpus_dir: Path) -> None:
    files = sorted(corpus_dir.glob("*.log"))
    total = sum(1 for path in files for line in open_lines(str(path)) if line)
    assert len(results(corpus_dir)) == total


# ------------------------------------------------------------------ sidecar fields

# Their vocabulary -> ours. A name on the right is an attribute of the envelope
# ("env.") or of the record; several names mean "whichever the record has".
CROWDSEC = {
    "program": ("env.program",),
    "pid": ("env.pid",),
    "message": ("env.message",),
    "machine": ("env.host",),
    "dovecot_user": ("user",),
    "dovecot_remote_ip": ("remote_ip",),
    "remote_addr": ("client_ip",),
    "remote_host": ("client_host",),
    "smtp_basic_status_code": ("smtp_code",),
    "smtp_enhanced_status_code": ("dsn",),
    "port": ("client_port",),
}
MSIMERSON = {
    "host": ("env.host",),
    "prog": ("env.program",),
    "pid": ("env.pid",),
    "msg": ("env.message",),
    "qid": ("queue_id",),
    "to": ("recipient",),
    "relay": ("relay",),
    "orig_to": ("orig_recipient",),
    "from": ("sender",),
    "size": ("size",),
    "nrcpt": ("nrcpt",),
    "dsn": ("dsn",),
    "delay": ("delay",),
    "conn_use": ("conn_use",),
    "message-id": ("message_id",),
    "resent-message-id": ("message_id",),
    "client": ("client_host",),
    "sasl_method": ("sasl_method",),
    "sasl_username": ("sasl_username",),
    "uid": ("uid",),
}
GROK = {
    "postfix_queueid": ("queue_id",),
    "postfix_client_ip": ("client_ip",),
    "postfix_client_hostname": ("client_host",),
    "postfix_client_port": ("client_port",),
    # outbound connection events name the remote server in client_* (see postfix.py)
    "postfix_relay_hostname": ("relay_host", "client_host"),
    "postfix_relay_ip": ("relay_ip", "client_ip"),
    "postfix_relay_port": ("relay_port", "client_port"),
    "postfix_status": ("status",),
    "postfix_from": ("sender",),
    "postfix_message-id": ("message_id",),
    "postfix_delay_before_qmgr": ("delay_before_qmgr",),
    "postfix_delay_in_qmgr": ("delay_in_qmgr",),
    "postfix_delay_conn_setup": ("delay_conn_setup",),
    "postfix_delay_transmission": ("delay_transmission",),
    "postfix_status_code": ("smtp_code",),
    "postfix_smtp_stage": ("stage",),
    "postfix_postscreen_dnsbl_rank": ("rank",),
}
# fail2ban and sshguard name the attacker's address; ours is one of these.
ADDRESS = ("client_ip", "remote_ip")


def expected_fields(file: str, expect: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(their field, their value) pairs of one expectation that we can compare."""
    if file == "crowdsec-hub.log":
        # s02-enrich dates assume the year of crowdsec's test run: not compared.
        for name, stage in expect.items():
            if not name.startswith("s02-") and stage.get("success"):
                yield from stage.get("parsed", {}).items()
                yield from stage.get("meta", {}).items()
    elif file == "msimerson-postfix-parser.log":
        yield from (expect.get("expected_object") or {}).items()
    elif file == "postfix-grok-patterns.log":
        yield from expect.get("results", {}).items()
    elif file.startswith("fail2ban-") and expect.get("match") and "host" in expect:
        yield "address", expect["host"]
    elif file == "sshguard.log":
        yield "address", expect["sshguard_attack"]["address"]
    elif file in ("ossec-hids.log", "wazuh-ruleset.log") and expect["expect_match"]:
        yield "decoder", str(expect["decoder"]).split("-")[0]


def same_stamp(result: Result, text: str) -> bool:
    """Their stamp (``Jul  5 06:52:11``, ``Sep 8 07:46:30`` or RFC 3339) names the
    same instant as our envelope; the year of a BSD stamp is theirs to assume."""
    if result.env is None:
        return False
    if text[:1].isdigit():
        return math.isclose(datetime.fromisoformat(text).timestamp(), result.env.ts)
    mine = datetime.fromtimestamp(result.env.ts, UTC)
    month, day, clock = text.split()
    return (month, int(day), clock) == (f"{mine:%b}", mine.day, f"{mine:%H:%M:%S}")


def our_status(result: Result) -> str:
    """msimerson's status is ours with the response in parentheses."""
    status = getattr(result.record, "status", "")
    response = getattr(result.record, "response", "")
    return f"{status} ({response})" if response else str(status)


def our_delays(result: Result) -> list[float | None]:
    names = ("delay_before_qmgr", "delay_in_qmgr", "delay_conn_setup")
    return [getattr(result.record, n, None) for n in (*names, "delay_transmission")]


def special(result: Result, field: str, value: Any) -> bool | None:
    """Fields that need more than a name: None when ``field`` is not one of them."""
    if field in ("date", "timestamp", "timestamp8601"):
        return same_stamp(result, str(value))
    if field == "msg":  # msimerson: the message after the queue ID
        return result.line.endswith(str(value))
    if field == "client":  # msimerson: "host[ip]"
        record = result.record
        host, ip = (
            getattr(record, "client_host", None),
            getattr(record, "client_ip", ""),
        )
        return f"{host}[{ip}]" == value
    if field in ("status", "postfix_status") and result.record.kind == "qmgr_expired":
        return str(value).startswith("expired")
    if field == "status" and result.file.startswith("msimerson"):
        return our_status(result) == value
    if field == "delays":
        theirs = [float(v) for v in str(value).split("/")]
        return our_delays(result) == theirs
    if field == "address":
        return any(agrees(ours(result, (n,)), value) for n in ADDRESS)
    if field == "decoder":
        return result.family == value and result.record.kind != "unparsed"
    return None


def ours(result: Result, names: tuple[str, ...]) -> Any:
    for name in names:
        if name.startswith("env."):
            return getattr(result.env, name[4:], None) if result.env else None
        if hasattr(result.record, name):
            return getattr(result.record, name)
    return None


def agrees(mine: Any, theirs: Any) -> bool:
    if isinstance(mine, float) and mine is not None:
        return math.isclose(mine, float(theirs), rel_tol=1e-6)
    return str(mine if mine is not None else "") == str(theirs)


def disagreements(result: Result) -> Iterator[str]:
    """Names of their fields whose equivalent value we read differently."""
    table = {
        "crowdsec-hub.log": CROWDSEC,
        "msimerson-postfix-parser.log": MSIMERSON,
        "postfix-grok-patterns.log": GROK,
    }.get(result.file, {})
    if result.family not in ("postfix", "dovecot"):
        return  # fragments and other programs' lines (near-miss negatives)
    for expect in result.expects:
        for field, value in expected_fields(result.file, expect):
            if result.env is None and table.get(field, ("",))[0].startswith("env."):
                continue  # without a syslog frame their field means something else
            ok = special(result, field, value)
            if ok is None and field in table:
                ok = agrees(ours(result, table[field]), value)
            if ok is False:
                yield field


def test_corpus_sidecar_fields_agree(corpus_dir: Path) -> None:
    found = {
        (r.file, field, r.line)
        for r in results(corpus_dir)
        if r.expects
        for field in disagreements(r)
    }
    assert sorted(found - exceptions("expect")) == []
