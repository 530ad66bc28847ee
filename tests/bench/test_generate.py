"""The log generator: exact size, a truth that adds up and agrees with its lines."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailtriage.parsers.classify import CAUSES, classify_delivery, classify_reject

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "generate.py"
FIVE = ("delivered", "bounced", "expired", "deferred")


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


gen = load_generator()


@dataclass
class Generated:
    path: Path
    lines: list[str]
    truth: dict[str, Any]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    # A short queue lifetime and a calm rate make expiries fit in a small file.
    path = tmp_path_factory.mktemp("gen") / "mail.log"
    gen.generate(
        path, 40_000, 3, hosts=2, queue_lifetime=600.0, sessions_per_second=2.0
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    truth = json.loads(Path(f"{path}.truth.json").read_text())
    return Generated(path, lines, truth)


def totals(g: Generated) -> dict[str, int]:
    value: dict[str, int] = g.truth["totals"]
    return value


def test_file_has_exactly_the_requested_lines(generated: Generated) -> None:
    assert len(generated.lines) == 40_000
    assert generated.truth["lines"]["total"] == 40_000


def test_outcomes_add_up_to_recipients_everywhere(generated: Generated) -> None:
    rows = [totals(generated)]
    rows += generated.truth["by_tenant"] + generated.truth["by_domain"]
    rows += list(generated.truth["by_transport"].values())
    for row in rows:
        assert sum(row[k] for k in FIVE) == row["recipients"], row


def test_tenant_domain_and_transport_rows_sum_to_the_totals(
    generated: Generated,
) -> None:
    total = totals(generated)
    for group in ("by_tenant", "by_domain"):
        rows = generated.truth[group]
        assert isinstance(rows, list)
        for key in (*FIVE, "deferral_attempts", "recipients", "rejects"):
            assert sum(row[key] for row in rows) == total[key], (group, key)
    transports = generated.truth["by_transport"]
    assert isinstance(transports, dict)
    assert sum(r["recipients"] for r in transports.values()) == total["recipients"]


def test_truth_agrees_with_a_plain_count_of_its_lines(generated: Generated) -> None:
    text = "\n".join(generated.lines)
    total = totals(generated)
    assert text.count("status=sent (") == total["delivered"]
    assert text.count("status=bounced (") == total["bounced"]
    assert text.count("status=deferred (") == total["deferral_attempts"]
    assert text.count("NOQUEUE: reject:") == total["rejects"]
    received = len(re.findall(r": client=|: uid=0 from=", text))
    assert received == total["messages_received"]
    assert text.count("sender non-delivery notification") == total["notifications"]


def test_every_outcome_kind_occurs(generated: Generated) -> None:
    total = totals(generated)
    for key in (*FIVE, "deferral_attempts", "rejects", "notifications"):
        assert total[key] > 0, key


def test_cause_counts_match_the_outcomes_and_use_public_names(
    generated: Generated,
) -> None:
    causes = generated.truth["causes"]
    assert isinstance(causes, dict)
    total = totals(generated)
    assert sum(causes["bounced"].values()) == total["bounced"]
    assert sum(causes["deferral_attempts"].values()) == total["deferral_attempts"]
    assert sum(causes["expired"].values()) == total["expired"]
    assert sum(causes["rejects"].values()) == total["rejects"]
    for counts in causes.values():
        assert set(counts) <= set(CAUSES)


def test_line_kinds_and_programs_count_every_line(generated: Generated) -> None:
    lines = generated.truth["lines"]
    assert isinstance(lines, dict)
    assert sum(lines["by_kind"].values()) == 40_000
    assert sum(lines["by_program"].values()) == 40_000
    program = re.compile(r"\S+ +\S+ \S+ \S+ ([^:\[]+)")
    programs = Counter(m[1] for ln in generated.lines if (m := program.match(ln)))
    assert dict(programs) == lines["by_program"]


def test_timestamps_never_go_back_and_hosts_interleave(generated: Generated) -> None:
    stamps = [line[:15] for line in generated.lines]
    assert stamps == sorted(stamps)  # one day, so the text sorts like the time
    hosts = [line.split()[3] for line in generated.lines[:200]]
    assert {"mx1", "mx2"} <= set(hosts)


def test_lmtp_replies_and_dovecot_lines_share_session_ids(
    generated: Generated,
) -> None:
    text = "\n".join(generated.lines)
    postfix = set(re.findall(r"250 2\.0\.0 <[^>]+> (\S+) Saved", text))
    dovecot = set(re.findall(r"lmtp\([^)]+\)<\d+><([^>]+)>: msgid=.*saved mail", text))
    joined = generated.truth["dovecot"]["joined"]
    assert joined == len(postfix & dovecot)
    assert joined >= 0.99 * len(postfix)


def test_queue_ids_are_reused_after_removal(generated: Generated) -> None:
    removed = Counter(
        m[1] for ln in generated.lines if (m := re.search(r": (\w+): removed$", ln))
    )
    assert any(n > 1 for n in removed.values())


def test_expired_messages_have_their_qmgr_line(generated: Generated) -> None:
    expired_lines = sum(
        "status=expired, returned to sender" in ln for ln in generated.lines
    )
    assert expired_lines > 0
    assert totals(generated)["expired"] >= expired_lines


def test_tenants_file_has_the_shape_of_the_issue(generated: Generated) -> None:
    config = tomllib.loads(Path(f"{generated.path}.tenants.toml").read_text())
    tenants = config["tenants"]
    assert set(tenants) == set(generated.truth["generator"]["tenants"])
    for entry in tenants.values():
        assert entry["domains"] and entry["senders"] and entry["sasl_users"]
    assert "*.acme-corp.example" in tenants["acme"]["domains"]


def test_same_seed_writes_the_same_file(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log"
    gen.generate(first, 3_000, 11)
    gen.generate(second, 3_000, 11)
    gen.generate(other, 3_000, 12)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_hosts_and_long_queue_ids_follow_the_arguments(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    gen.generate(path, 3_000, 5, hosts=3, long_queue_ids=True)
    text = path.read_text()
    assert all(f" {host} " in text for host in ("mx1", "mx2", "mx3"))
    # Seconds and microseconds in base 52, 'z', the inode in base 51 (no 'z').
    base51 = "0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y"
    long_id = f"[{base51}z]{{10}}z[{base51}]{{4}}"
    assert re.search(rf" mx2 postfix/qmgr\[\d+\]: {long_id}: removed", text)


@pytest.mark.parametrize("key", sorted(gen.REPLIES))
def test_each_reply_gets_the_cause_the_classifier_gives(key: str) -> None:
    reply = gen.REPLIES[key]
    text = reply.render(
        rcpt="bob@example.net",
        domain="example.net",
        relay="mx.example.net[198.51.100.7]",
        ip="192.0.2.10",
    )
    result = classify_delivery(reply.status, reply.dsn, reply.code, text)
    assert result is not None
    assert result.cause == reply.cause


@pytest.mark.parametrize("key", sorted(gen.REJECTS))
def test_each_reject_gets_the_cause_the_classifier_gives(key: str) -> None:
    template, cause = gen.REJECTS[key]
    text = template.format(
        rcpt="bob@acme.example", domain="acme.example", ip="203.0.113.9", helo="x"
    )
    code = int(text[:3])
    assert classify_reject(code, None, text[4:]).cause == cause


def test_command_line_writes_log_truth_and_tenants(tmp_path: Path) -> None:
    out = tmp_path / "cli.log"
    command = [sys.executable, str(SCRIPT), "--out", str(out), "--lines", "500"]
    subprocess.run([*command, "--seed", "2"], check=True, capture_output=True)
    assert len(out.read_text().splitlines()) == 500
    assert json.loads(Path(f"{out}.truth.json").read_text())["lines"]["total"] == 500
    assert Path(f"{out}.tenants.toml").exists()
