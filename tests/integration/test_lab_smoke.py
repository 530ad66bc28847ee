"""The mail lab itself: real Postfix hands a message to real Dovecot over LMTP, both
write the lines mailtriage reads, and nothing is left running afterwards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from daemons import MailLab, missing_requirements, tenant_lab_config

pytestmark = pytest.mark.daemons

# Postfix's maillog_file: "Dec 03 16:59:42 mx1 postfix/lmtp[14067]: ..."
POSTFIX_LINE = re.compile(
    r"[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d mx1 postfix/[\w/-]+\[\d+\]: "
)
# Dovecot's log_path: "Dec 03 16:59:42 lmtp(alice@acme.example)<13911><...>: Info: ..."
DOVECOT_LINE = re.compile(r"[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d [\w-]+(\([^)]*\))?[<:]")


def _delivered(mail_lab: MailLab, queue_id: str) -> tuple[str, str]:
    mail_lab.wait_until_quiet(lambda pf, dc: f"{queue_id}: removed" in pf)
    return mail_lab.logs().text()


def test_message_reaches_the_dovecot_mailbox(mail_lab: MailLab) -> None:
    sent = mail_lab.send(
        "sender@partner.example", ["alice@acme.example"], client_ip="127.0.3.9"
    )
    assert sent.queue_id is not None
    assert sent.refused == {}

    postfix, dovecot = _delivered(mail_lab, sent.queue_id)

    relay = re.escape(f"relay=127.0.0.1[127.0.0.1]:{mail_lab.lmtp_port}")
    reply = re.search(
        rf"{sent.queue_id}: to=<alice@acme\.example>, {relay}, .* status=sent "
        r"\(250 2\.0\.0 <alice@acme\.example> (\S+) Saved\)",
        postfix,
    )
    assert reply is not None, postfix
    session = reply.group(1)
    saved = f"><{session}>: Info: msgid={sent.message_id}: saved mail to INBOX"
    assert "lmtp(alice@acme.example)<" in dovecot
    assert saved in dovecot
    inbox = mail_lab.home("alice@acme.example") / "Maildir/new"
    assert len(list(inbox.iterdir())) == 1


def test_every_log_line_has_the_native_frame(mail_lab: MailLab) -> None:
    sent = mail_lab.send("sender@partner.example", ["dave@acme.example"])
    assert sent.queue_id is not None
    postfix, dovecot = _delivered(mail_lab, sent.queue_id)

    assert postfix and dovecot
    assert [ln for ln in postfix.splitlines() if not POSTFIX_LINE.match(ln)] == []
    assert [ln for ln in dovecot.splitlines() if not DOVECOT_LINE.match(ln)] == []


def test_unknown_user_is_refused_by_postfix_at_rcpt(mail_lab: MailLab) -> None:
    sent = mail_lab.send(
        "sender@partner.example", ["nobody@acme.example"], client_ip="127.0.3.9"
    )

    assert sent.queue_id is None
    code, text = sent.refused["nobody@acme.example"]
    assert (code, text.split()[0]) == (550, "5.1.1")
    mail_lab.wait_until_quiet(lambda pf, dc: "NOQUEUE: reject: RCPT" in pf)
    postfix, _ = mail_lab.logs().text()
    assert "User unknown in virtual mailbox table" in postfix


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _processes_of(directory: Path) -> list[int]:
    """Pids whose command line names ``directory`` (the lab's daemons do)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(directory).encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def test_close_stops_every_daemon_and_removes_the_lab() -> None:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    system_files = [Path("/etc/postfix/main.cf"), Path("/etc/dovecot/dovecot.conf")]
    before = [p.stat().st_mtime for p in system_files]
    lab = MailLab(tenant_lab_config())
    lab.start()
    pid_files = [
        lab.dir / "spool/postfix/pid/master.pid",
        lab.dir / "dovecot/run/master.pid",
    ]
    pids = [int(p.read_text().split()[0]) for p in pid_files]
    assert _processes_of(lab.dir)

    lab.close()

    assert not lab.dir.exists()
    assert [pid for pid in pids if _running(pid)] == []
    assert _processes_of(lab.dir) == []
    assert [p.stat().st_mtime for p in system_files] == before
