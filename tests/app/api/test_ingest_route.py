"""``POST /v1/ingest``: pushed lines reach the store, hosts apply, a full queue is a
429 and nothing of a refused push is taken."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_served import OPERATOR, SAMPLES, Served, bearer, service_settings

from mailtriage.app.api.app import create_app
from mailtriage.app.ingest.live import LiveIngest
from mailtriage.app.ingest.pipeline import IngestPipeline
from mailtriage.app.ingest.push import MAX_BODY_BYTES
from mailtriage.app.store import open_store

_SAVED = re.compile(
    r"(\w+): to=<([^>]+)>.*status=sent \(250 2\.0\.0 <[^>]+> (\S+) Saved"
)


@pytest.fixture(scope="module")
def api(served: Served) -> Iterator[httpx.Client]:
    with served.client(OPERATOR) as client:
        yield client


def _one_lmtp_message() -> tuple[list[str], list[str], str]:
    """The Postfix lines of one message delivered over LMTP, re-hosted on
    ``mx-push``, and Dovecot's lines of its session, with IDs changed so that
    they do not meet the copies already ingested; and the recipient."""
    postfix = (SAMPLES / "postfix.log").read_text().splitlines()
    dovecot = (SAMPLES / "dovecot.log").read_text().splitlines()
    found = next(m for line in postfix if (m := _SAVED.search(line)))
    queue_id, recipient, session = found.groups()
    session = session.split(":")[0]
    fresh = "Q" + session[1:]
    mine = [
        line.replace(" mx1 ", " mx-push ").replace(session, fresh)
        for line in postfix
        if f"{queue_id}:" in line
    ]
    theirs = [line.replace(session, fresh) for line in dovecot if session in line]
    assert mine and theirs
    return mine, theirs, recipient


def test_pushed_lines_are_committed_with_their_hosts(api: httpx.Client) -> None:
    postfix, dovecot, recipient = _one_lmtp_message()
    first = api.post(
        "/v1/ingest",
        params={"wait": "true"},
        content="\n".join(postfix) + "\n",
        headers={"Content-Type": "text/plain"},
    )
    assert first.status_code == 200, first.text
    assert first.json() == {"lines": len(postfix), "records": 0, "committed": True}
    ndjson = "\n".join(json.dumps({"line": line}) for line in dovecot)
    second = api.post(
        "/v1/ingest",
        params={"host": "mda-push", "wait": "true"},
        content=ndjson,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert second.status_code == 200, second.text
    items = api.get("/v1/deliveries", params={"host": "mx-push"}).json()["items"]
    sent = [i for i in items if i["recipient"] == recipient]
    assert sent and sent[0]["status"] == "sent"
    assert sent[0]["dovecot"] is not None
    assert sent[0]["dovecot"]["host"] == "mda-push"


def test_push_without_wait_is_accepted_before_commit(api: httpx.Client) -> None:
    response = api.post(
        "/v1/ingest",
        content="Dec  3 17:12:02 mx-other postfix/qmgr[1]: 4AB0C1: removed\n",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 202
    assert response.json()["committed"] is False


@pytest.mark.parametrize(
    ("content_type", "body", "status", "detail"),
    [
        ("application/x-ndjson", b'{"line": "a"}\n{nope', 400, "body line 2"),
        ("application/pdf", b"%PDF", 400, "content type"),
        ("application/x-ndjson", b'{"record": {"kind": "attempt"}}', 400, "record"),
        ("text/plain", b"x" * (MAX_BODY_BYTES + 1), 413, "larger than"),
    ],
    ids=["bad-ndjson", "bad-type", "record-form", "too-large"],
)
def test_bad_push_is_refused_with_a_problem(
    api: httpx.Client, content_type: str, body: bytes, status: int, detail: str
) -> None:
    response = api.post(
        "/v1/ingest", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_full_queue_answers_429_with_retry_after_and_takes_nothing(
    tmp_path: Path,
) -> None:
    # The app without its lifespan: no writer drains the queue, so it fills.
    settings = service_settings(tmp_path / "push.duckdb")
    store = open_store(settings)
    live = LiveIngest(
        IngestPipeline(store, settings),
        queue_max_lines=3,
        batch_lines=10,
        batch_seconds=1,
    )
    app = create_app(settings, store, live=live)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://mailtriage", headers=bearer(OPERATOR)
        ) as client:
            pushes = ["a\nb\n", "c\nd\n", "e\n"]
            return [
                await client.post(
                    "/v1/ingest", content=body, headers={"Content-Type": "text/plain"}
                )
                for body in pushes
            ]

    try:
        first, second, third = asyncio.run(scenario())
    finally:
        store.close()
    assert first.status_code == 202
    assert second.status_code == 429
    assert second.headers["retry-after"] == "1"
    assert second.headers["content-type"] == "application/problem+json"
    assert third.status_code == 202
    assert live.queue.pending_lines == 3
