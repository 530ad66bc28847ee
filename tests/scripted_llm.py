"""An OpenAI-compatible chat-completions server on loopback, scripted by the test.

The agent under test talks to it through the real ``openai`` client. Each request
to ``POST /v1/chat/completions`` takes the next reply of the script:

    Reply(text="...")                       an answer (streamed in small chunks
                                            when the request asks for a stream)
    Reply(calls=[("search_deliveries", {...})])   tool calls
    Reply(status=500)                       an error status
    Reply(delay_seconds=5, text="...")      an answer that comes too late
    a function of the request body          decides when the request arrives

Every request body is kept in ``requests`` so that the test can read what the
agent sent (the tools offered, the tool results, pseudonymised addresses).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNK_CHARS = 7


@dataclass(frozen=True)
class Reply:
    """One scripted reply."""

    text: str = ""
    calls: Sequence[tuple[str, dict[str, Any] | str]] = ()
    status: int = 200
    delay_seconds: float = 0.0


Script = Sequence["Reply | Callable[[dict[str, Any]], Reply]"]


@dataclass
class ScriptedLLM:
    """The server's script and what it received."""

    script: list[Reply | Callable[[dict[str, Any]], Reply]]
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        self.requests.append(body)
        if not self.script:
            return Reply(status=500, text="the script has no more replies")
        step = self.script.pop(0)
        return step if isinstance(step, Reply) else step(body)


def tool_messages(body: dict[str, Any]) -> list[str]:
    """The contents of the tool results in a request, in order."""
    return [m["content"] for m in body["messages"] if m.get("role") == "tool"]


def _call_dicts(reply: Reply) -> list[dict[str, Any]]:
    calls = []
    for i, (name, arguments) in enumerate(reply.calls):
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append({"id": f"call_{i}_{name}", "name": name, "arguments": text})
    return calls


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    calls = _call_dicts(reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls
        ]
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
    }


def _chunk(delta: dict[str, Any], model: str, finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def _chunks(reply: Reply, model: str) -> Iterator[str]:
    """The reply as the streaming API sends it: text and each call's arguments a
    few characters at a time, then [DONE]."""
    yield _chunk({"role": "assistant", "content": ""}, model)
    text = reply.text
    for start in range(0, len(text), CHUNK_CHARS):
        yield _chunk({"content": text[start : start + CHUNK_CHARS]}, model)
    calls = _call_dicts(reply)
    for i, call in enumerate(calls):
        head = {"index": i, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["name"], "arguments": ""}
        yield _chunk({"tool_calls": [head]}, model)
        args = call["arguments"]
        for start in range(0, len(args), CHUNK_CHARS):
            piece = args[start : start + CHUNK_CHARS]
            part = {"index": i, "function": {"arguments": piece}}
            yield _chunk({"tool_calls": [part]}, model)
    yield _chunk({}, model, "tool_calls" if calls else "stop")
    yield "data: [DONE]\n\n"


async def _gone_before(request: Request, seconds: float) -> bool:
    """Wait ``seconds``; True as soon as the client hangs up (a timed-out
    client), so that the handler ends instead of being cancelled at shutdown."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return True
        await asyncio.sleep(0.05)
    return False


def _app(llm: ScriptedLLM) -> Starlette:
    async def completions(request: Request) -> Response:
        body = await request.json()
        reply = llm.next_reply(body)
        if reply.delay_seconds and await _gone_before(request, reply.delay_seconds):
            return Response(status_code=499)
        if reply.status != 200:
            error = {"error": {"message": reply.text or "scripted failure"}}
            return JSONResponse(error, status_code=reply.status)
        model = str(body.get("model", "scripted"))
        if body.get("stream"):
            return StreamingResponse(
                _chunks(reply, model), media_type="text/event-stream"
            )
        return JSONResponse(_completion(reply, model))

    return Starlette(
        routes=[Route("/v1/chat/completions", completions, methods=["POST"])]
    )


@contextmanager
def scripted_llm(script: Script) -> Iterator[ScriptedLLM]:
    """The server, listening on a free loopback port until the block ends."""
    llm = ScriptedLLM(list(script))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _app(llm), log_config=None, access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]})
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "the scripted LLM did not start"
            assert time.monotonic() < deadline, "the scripted LLM did not start"
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        llm.url = f"http://{host}:{port}/v1"
        yield llm
    finally:
        server.should_exit = True
        # A reply sleeping past the client's timeout must not hold the stop.
        server.force_exit = True
        thread.join(10)
        sock.close()
