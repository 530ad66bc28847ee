"""Tenant-isolation checks of the triage and chat routes, in the form of
``test_tenant_isolation.CASES`` (one function of the acme and operator clients per
route), so that the route-by-route isolation suite can hold them too."""

from __future__ import annotations

from typing import Protocol

import httpx


class TwoClients(Protocol):
    """An acme token's client and an operator's."""

    acme: httpx.Client
    operator: httpx.Client


def check_triage(c: TwoClients) -> None:
    mine = c.acme.get("/v1/triage").json()
    truth = c.operator.get("/v1/triage", params={"tenant": "acme"}).json()
    assert mine["findings"] and mine["findings"] == truth["findings"]
    assert {f["tenant"] for f in mine["findings"]} == {"acme"}
    forbidden = c.acme.get("/v1/triage", params={"tenant": "globex"})
    assert forbidden.status_code == 403


def check_chat(c: TwoClients) -> None:
    body = {"question": "what is wrong with globex.example?", "stream": False}
    answer = c.acme.post("/v1/chat", json=body).json()
    findings = answer["findings"]["findings"] if answer["findings"] else []
    assert answer["findings"]["window"]["tenant"] == "acme"
    assert all(f["tenant"] == "acme" for f in findings)
    assert "globex.example" not in {f["domain"] for f in findings}
    for call in answer["tool_calls"]:
        assert "globex" not in str(call["result"])


def check_conversation(c: TwoClients) -> None:
    body = {"question": "operator's question", "stream": False}
    theirs = c.operator.post("/v1/chat", json=body).json()["conversation_id"]
    mine = c.acme.post("/v1/chat", json=body | {"question": "mine"}).json()
    assert c.acme.get(f"/v1/chat/{theirs}").status_code == 404
    turns = c.acme.get(f"/v1/chat/{mine['conversation_id']}").json()["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert {t["tenant"] for t in turns} == {"acme"}
    hijack = c.acme.post(
        "/v1/chat", json=body | {"conversation_id": theirs, "question": "me too"}
    )
    assert hijack.status_code == 404


CHECKS = {
    ("GET", "/v1/triage"): check_triage,
    ("POST", "/v1/chat"): check_chat,
    ("GET", "/v1/chat/{conversation_id}"): check_conversation,
}
"""The cases to add to ``test_tenant_isolation.CASES``."""
