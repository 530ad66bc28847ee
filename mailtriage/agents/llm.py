"""The LLM endpoint: any OpenAI-compatible chat-completions server, through the
``openai`` client (OpenAI, Azure's OpenAI-compatible endpoint, vLLM, Ollama,
llama.cpp's server).

Where it is: ``[llm] base_url``, ``api_key`` and ``model`` in the config or
``MAILTRIAGE_LLM__BASE_URL``, ``MAILTRIAGE_LLM__API_KEY``, ``MAILTRIAGE_LLM__MODEL``;
when the first two are unset, ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``. The
environment is read when ``resolve_endpoint`` is called (at start-up), never at
import. Errors of the client are translated here, once, into ``LLMError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import openai
from loguru import logger

from mailtriage.app.settings import LLMSettings
from mailtriage.errors import LLMError

NOT_CONFIGURED = (
    "No LLM is configured. Set MAILTRIAGE_LLM__BASE_URL (or OPENAI_BASE_URL) to an "
    "OpenAI-compatible endpoint such as http://127.0.0.1:11434/v1, "
    "MAILTRIAGE_LLM__API_KEY (or OPENAI_API_KEY) if it needs a key, and "
    "MAILTRIAGE_LLM__MODEL to the model name (now {model!r}); or put base_url, "
    "api_key and model under [llm] in the config file."
)
"""What to set, said by ``/v1/chat`` and ``mailtriage chat`` without an LLM."""

# A local server (Ollama, llama.cpp) needs no key, but the client wants one.
_NO_KEY = "not-needed"


@dataclass(frozen=True, slots=True)
class LLMEndpoint:
    """Where the model is and how long to wait for it."""

    base_url: str | None
    api_key: str
    model: str
    timeout_seconds: float

    def describe(self) -> str:
        """The endpoint for messages: URL and model, never the key."""
        return f"{self.base_url or 'https://api.openai.com/v1'} (model {self.model})"


def resolve_endpoint(
    settings: LLMSettings, environ: Mapping[str, str] | None = None
) -> LLMEndpoint | None:
    """The configured endpoint, or None when neither a URL nor a key is set."""
    env = os.environ if environ is None else environ
    base_url = settings.base_url or env.get("OPENAI_BASE_URL") or None
    key = settings.api_key.get_secret_value() if settings.api_key else None
    key = key or env.get("OPENAI_API_KEY") or None
    if base_url is None and key is None:
        return None
    return LLMEndpoint(
        base_url=base_url,
        api_key=key or _NO_KEY,
        model=settings.model,
        timeout_seconds=settings.timeout_seconds,
    )


def not_configured(settings: LLMSettings) -> str:
    """The message that says what to set."""
    return NOT_CONFIGURED.format(model=settings.model)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is its JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Completion:
    """One whole reply of the model: its text and the calls it asked for."""

    text: str
    tool_calls: list[ToolCall]


Piece = str | Completion
"""What ``complete`` yields: text as it arrives, then one ``Completion``."""


class ChatClient:
    """Chat completions from an ``LLMEndpoint``, streamed or not, as ``Piece``s."""

    def __init__(self, endpoint: LLMEndpoint) -> None:
        self.endpoint = endpoint
        # One attempt: a failing endpoint falls back to the findings at once
        # instead of making the user wait for the client's retries.
        self._client = openai.OpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=endpoint.timeout_seconds,
            max_retries=0,
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()

    def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        *,
        stream: bool,
    ) -> Iterator[Piece]:
        """The model's reply to ``messages``, offering ``tools`` (none if None)."""
        logger.debug(
            "llm request",
            model=self.endpoint.model,
            messages=len(messages),
            tools=len(tools or []),
            stream=stream,
        )
        try:
            if stream:
                yield from self._streamed(messages, tools)
            else:
                yield from self._whole(messages, tools)
        except openai.OpenAIError as exc:
            raise _translate(exc, self.endpoint) from exc
        except LLMError:
            raise
        except Exception as exc:
            # A reply the client cannot read (a proxy's HTML page, broken JSON).
            raise LLMError(
                f"{self.endpoint.describe()} sent a reply that is not an "
                f"OpenAI-compatible completion: {type(exc).__name__}: {exc}"[:400]
            ) from exc

    def _create(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> dict[str, Any]:
        args: dict[str, Any] = {"model": self.endpoint.model, "messages": messages}
        if tools:
            args["tools"] = tools
        return args

    def _whole(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> Iterator[Piece]:
        create = cast(Any, self._client.chat.completions.create)
        reply = create(**self._create(messages, tools))
        if not reply.choices:
            raise LLMError(f"{self.endpoint.describe()} returned no choices")
        message = reply.choices[0].message
        text = message.content or ""
        calls = [
            ToolCall(c.id, c.function.name, c.function.arguments or "{}")
            for c in message.tool_calls or []
            if getattr(c, "function", None) is not None
        ]
        if text:
            yield text
        yield Completion(text, calls)

    def _streamed(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> Iterator[Piece]:
        create = cast(Any, self._client.chat.completions.create)
        chunks = create(**self._create(messages, tools), stream=True)
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        with chunks:
            for chunk in chunks:
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        yield delta.content
                    for part in delta.tool_calls or []:
                        _add_call_part(calls, part)
        yield Completion(
            "".join(text),
            [
                ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"] or "{}")
                for i, c in sorted(calls.items())
            ],
        )


def _add_call_part(calls: dict[int, dict[str, str]], part: Any) -> None:
    """Streamed tool calls come in pieces by index: the id and name first, then
    the arguments a few characters at a time."""
    call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
    if part.id:
        call["id"] = part.id
    function = part.function
    if function is not None:
        call["name"] += function.name or ""
        call["arguments"] += function.arguments or ""


def _translate(exc: openai.OpenAIError, endpoint: LLMEndpoint) -> LLMError:
    where = endpoint.describe()
    if isinstance(exc, openai.APITimeoutError):
        return LLMError(
            f"{where} did not answer within {endpoint.timeout_seconds:g} s "
            "([llm] timeout_seconds)"
        )
    if isinstance(exc, openai.APIConnectionError):
        return LLMError(f"cannot reach {where}: {exc.message}")
    if isinstance(exc, openai.APIStatusError):
        return LLMError(
            f"{where} answered HTTP {exc.status_code}: {str(exc.message)[:300]}"
        )
    return LLMError(f"{where} failed: {str(exc)[:300]}")
