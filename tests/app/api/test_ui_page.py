"""The chat page at ``/ui``: served as plain files, and driven in headless
Chromium against a service whose agent talks to a scripted LLM."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from api_served import Served, serving
from headless import chromium
from scripted_llm import Reply, ScriptedLLM, scripted_llm

from mailtriage.app.settings import load_settings

TENANTS = Path(__file__).resolve().parents[3] / "samples" / "tenants.toml"
CHROMIUM = shutil.which("chromium")
QUESTION = (
    "Check the last 5 minutes of Postfix logs, find every LMTP delivery to the MDA "
    "slower than 3 s, and tell me whether specific recipient domains or tenants "
    "trigger it."
)


@pytest.fixture(scope="module")
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm([]) as server:
        yield server


@pytest.fixture(scope="module")
def page_service(
    llm: ScriptedLLM, sample_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The samples served without tokens (loopback), with the scripted LLM."""
    db = tmp_path_factory.mktemp("ui") / "samples.duckdb"
    shutil.copy(sample_db, db)
    overrides = {"store": {"db": str(db)}, "llm": {"base_url": llm.url}}
    with serving(load_settings(TENANTS, overrides)) as running:
        yield running


def test_ui_is_served_with_a_strict_content_policy(page_service: Served) -> None:
    with page_service.client() as client:
        page = client.get("/ui")
        script = client.get("/ui/chat.js")
        missing = client.get("/ui/secrets.txt")

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script src="/ui/chat.js"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the policy forbids it
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text  # log text is only ever set as text
    assert missing.status_code == 404


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_chat_page_streams_an_answer_with_tool_calls_and_trace_links(
    page_service: Served, llm: ScriptedLLM
) -> None:
    search = {
        "since": "-5m",
        "transport": "lmtp",
        "min_delay": 3,
        "group_by": ["tenant", "domain"],
    }
    llm.script[:] = [
        Reply(calls=[("search_deliveries", search)]),
        Reply(text="All slow LMTP deliveries went to initech.example: 009FC20C926."),
    ]
    assert CHROMIUM is not None
    with chromium(CHROMIUM) as browser:
        browser.open(f"{page_service.url}/ui?q={quote(QUESTION)}")
        browser.wait_for("document.body.dataset.state === 'done'")
        dom = browser.evaluate("document.documentElement.outerHTML")

    answer = re.search(r'<article id="answer"[^>]*>(.*?)</article>', dom, re.S)
    assert answer is not None
    assert "All slow LMTP deliveries went to initech.example" in html.unescape(
        answer.group(1)
    )
    assert 'href="/v1/messages/009FC20C926"' in answer.group(1)
    assert 'id="tool-call_0_search_deliveries"' in dom
    assert "search_deliveries" in dom and "success" in dom
    findings = re.search(r'<ol id="findings">(.*?)</ol>', dom, re.S)
    assert findings is not None and "quota_exceeded" in findings.group(1)
