"""What to do about each finding: one text per cause and per delay stage, as data.

Each text names the Postfix parameter (postconf(5)), the Dovecot setting or the
command to run first. ``{domain}``, ``{relay}`` and ``{transport}`` are replaced by
the finding's values (without a relay, by the domain's servers); no other braces
are special, so Dovecot's ``service lmtp { ... }`` blocks can be quoted as they are
written.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailtriage.parsers.classify import CAUSES

CAUSE_REMEDIATION: Mapping[str, str] = {
    "quota_exceeded": (
        "Mailboxes are full. Decide the quota policy for {domain}: raise the quota "
        "(Dovecot quota_rule, or the userdb's quota_rule field) or have the users "
        "clean up, and warn them before they fill: quota_warning = storage=90%% "
        "quota-warning 90 %u with a quota-warning service. Keep "
        "lmtp_rcpt_check_quota = yes so that full mailboxes are refused at RCPT "
        "instead of after DATA, or refuse them at SMTP time with Dovecot's "
        "quota-status policy service in smtpd_recipient_restrictions "
        "(check_policy_service), so that no bounce is generated."
    ),
    "unknown_recipient": (
        "Recipients do not exist. For a local domain, Postfix's recipient map and "
        "Dovecot's userdb disagree: compare `postmap -q <address> "
        "virtual_mailbox_maps` with `doveadm user <address>` and fix the stale "
        "side, so that smtpd refuses unknown users at RCPT (no backscatter "
        "bounces). For a remote domain, remove the addresses from the sender's "
        "lists."
    ),
    "mailbox_disabled": (
        "The mailboxes exist but are disabled or inactive at {domain}. Check the "
        "account state (`doveadm user <address>` for local users) and remove "
        "addresses the remote marks as inactive from mailing lists."
    ),
    "remote_throttling": (
        "{domain} ({relay}) limits how fast we may send. Give it a transport of "
        "its own so the limit slows only that provider: in master.cf "
        "`slow-{transport} unix - - n - - smtp`, in transport_maps "
        "`{domain} slow-{transport}:`, and in main.cf "
        "`slow-{transport}_destination_concurrency_limit = 2` and "
        "`slow-{transport}_destination_rate_delay = 1s` (smtp_destination_rate_delay "
        "per transport; a delay above zero also means one delivery at a time). "
        "Then read the provider's bulk-sender guidelines."
    ),
    "greylisting": (
        "{domain} greylists first contacts; Postfix retries and delivers, which is "
        "expected. Only when it persists: keep a stable sending IP, check that "
        "retries are not too slow (minimal_backoff_time, default 300s), or ask the "
        "recipient's postmaster to allow-list the sending host."
    ),
    "policy_rejected": (
        "{domain} ({relay}) refuses our mail on policy or reputation. Check the "
        "sending IP on the public blocklists the reply names, SPF, DKIM and DMARC "
        "alignment for the sender domain, and the tenant's recent volume; then "
        "follow the provider's postmaster procedure (the delisting or sender "
        "support form its reply or postmaster site links to). Pause bulk mail "
        "from the tenant until it is cleared."
    ),
    "relay_denied": (
        "A relay refused to relay for us, or clients tried to relay through us. "
        "Check mynetworks, smtpd_relay_restrictions and SASL authentication for "
        "the clients concerned; for a smarthost, check "
        "smtp_sasl_password_maps and relayhost."
    ),
    "dns_failure": (
        "Name service failed for {domain}. Run `dig MX {domain}` and `dig A` on "
        "its MX hosts from the mail host; check the resolver Postfix's chrooted "
        "smtp(8) uses (/var/spool/postfix/etc/resolv.conf). If the domain is gone, "
        "remove its recipients; Postfix keeps retrying until "
        "maximal_queue_lifetime (default 5d)."
    ),
    "connection_refused": (
        "Nothing accepts connections at {relay} for {domain}. For a local "
        "domain this is the MDA: is Dovecot's lmtp listener up "
        "(`doveadm service status`, `ss -ltn`), and does transport_maps or "
        "virtual_transport point at the right host and port (`postmap -q "
        "{domain} transport_maps`)? For a remote MX, test it with "
        "`posttls-finger -c '[{relay}]:25'`. Deferred mail is retried on "
        "`postqueue -f` once it is fixed."
    ),
    "connection_timeout": (
        "Connections to {relay} for {domain} time out or break off. Test the path "
        "with `posttls-finger -c '[{relay}]:25'` and a traceroute; check "
        "firewalls and the remote's load; smtp_connect_timeout (default 30s) and "
        "lmtp_connect_timeout bound how long Postfix waits."
    ),
    "tls_failure": (
        "TLS with {relay} fails for {domain}. Run `posttls-finger -c -l secure "
        "-P /etc/ssl/certs {domain}` to see the certificate and protocol; check "
        "smtp_tls_security_level and smtp_tls_policy_maps for a policy that "
        "demands more than the peer offers, the peer's certificate expiry, and "
        "smtp_tls_protocols/ciphers."
    ),
    "message_too_large": (
        "Messages exceed a size limit. Compare our message_size_limit with the "
        "SIZE the receiving server announces in its EHLO reply "
        "(`posttls-finger -c {domain}` shows it) and tell senders to share large "
        "files another way."
    ),
    "mda_temporary_error": (
        "The MDA answered with a temporary error. Trace one queue ID of the "
        "evidence and read Dovecot's Error lines of that session: typical causes "
        "are a full or read-only mail filesystem, permissions on the mail "
        "directory, or a userdb/quota backend that timed out."
    ),
    "expired": (
        "Mail stayed deferred until maximal_queue_lifetime (default 5d) and was "
        "returned. Fix the deferral cause named in the explanation; `qshape "
        "deferred` and `postqueue -p` show what is still waiting."
    ),
    "other": (
        "The classifier knows no rule for these responses: read the evidence and "
        "trace a queue ID (/v1/messages/<queue_id>) to see every line."
    ),
}
"""One remediation per cause of ``mailtriage.parsers.classify.CAUSES``."""

STAGE_REMEDIATION: Mapping[str, str] = {
    "before_queue_manager": (
        "Mail waits before the queue manager: smtpd, cleanup, milters or a "
        "content filter are slow, or the incoming queue is backed up. Check "
        "`qshape incoming`, milter timeouts (milter_*_timeout), the "
        "content_filter's throughput and the disk of the queue directory."
    ),
    "queue_manager": (
        "Mail waits in the queue manager for a free {transport} delivery agent: "
        "the destination's concurrency is used up. For LMTP raise "
        "lmtp_destination_concurrency_limit (default 20) together with the lmtp "
        "maxproc in master.cf and Dovecot's `service lmtp { process_limit }`; for "
        "SMTP check `qshape active` and "
        "{transport}_destination_concurrency_limit."
    ),
    "connection_setup": (
        "Connecting to {relay} is slow: DNS lookups, TCP connect, the greeting, "
        "HELO or TLS. Check `dig MX {domain}`, time the greeting with "
        "`posttls-finger -c '[{relay}]:25'`, and for LMTP keep Dovecot processes "
        "ready with `service lmtp { process_min_avail = 4 }`."
    ),
    "transmission": (
        "{relay} is slow to take the message after the connection is up (the "
        "data phase or the final reply): a loaded or tarpitting server or slow "
        "content scanning. If it is a provider limiting us, give it a transport "
        "of its own with {transport}_destination_concurrency_limit and "
        "smtp_destination_rate_delay; otherwise raise it with the remote side."
    ),
    "transmission:lmtp:dovecot": (
        "Dovecot itself takes the time to save (its delivery_time accounts for "
        "it): look at the mail storage's I/O latency, the quota backend, sieve "
        "and full-text-search plugins, and mail_fsync; if LMTP sessions queue up, "
        "raise `service lmtp { process_limit }` (with client_limit = 1) and keep "
        "lmtp_destination_concurrency_limit at or below it."
    ),
    "transmission:lmtp:path": (
        "Dovecot saves quickly (its delivery_time does not account for the "
        "delay), so the time is lost between Postfix and Dovecot: a proxy, "
        "director or load balancer on the path, the network to {relay}, or "
        "LMTP processes that are all busy. Check the hop in transport_maps or "
        "virtual_transport, `service lmtp { process_limit, client_limit }` on the "
        "MDA, and lmtp_destination_concurrency_limit."
    ),
    "transmission:lmtp:unknown": (
        "Dovecot's own timings are not in the log, so whether Dovecot or the path "
        "to it is slow cannot be told: add %{delivery_time} and %{session_time} "
        "to Dovecot's deliver_log_format. Meanwhile check the MDA's storage I/O "
        "and `service lmtp { process_limit }`, and the hop to {relay}."
    ),
}
"""One remediation per Postfix delay stage (``delays=a/b/c/d``), with the LMTP
transmission stage split by what Dovecot's own timings say."""

_MISSING = {"domain": "<domain>", "transport": "smtp"}


def remediation_for(
    key: str,
    *,
    domain: str | None = None,
    relay: str | None = None,
    transport: str | None = None,
) -> str:
    """The remediation of a cause or stage key, with the finding's values in it."""
    text = CAUSE_REMEDIATION.get(key) or STAGE_REMEDIATION.get(key)
    if text is None:
        text = CAUSE_REMEDIATION["other"]
    if relay is None:
        # No single host: name the domain's servers, and let posttls-finger find
        # them from the domain's MX records.
        text = text.replace(" ({relay})", "").replace("'[{relay}]:25'", "{domain}")
        text = text.replace("{relay}", "the servers of {domain}")
    else:
        text = text.replace("{relay}", relay)
    values = {"domain": domain, "transport": transport}
    for name, value in values.items():
        text = text.replace("{" + name + "}", value or _MISSING[name])
    return text


assert set(CAUSE_REMEDIATION) == set(CAUSES), "one remediation per cause"
