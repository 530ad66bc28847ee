"""Where the LLM endpoint comes from: the settings first, then OPENAI_* variables,
read when asked (at start-up), never at import."""

from __future__ import annotations

from pydantic import SecretStr

from mailtriage.agents.llm import not_configured, resolve_endpoint
from mailtriage.app.settings import LLMSettings


def test_nothing_set_means_no_endpoint() -> None:
    assert resolve_endpoint(LLMSettings(), {}) is None


def test_openai_variables_are_the_fallback() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_API_KEY": "k"}
    endpoint = resolve_endpoint(LLMSettings(model="llama3"), env)

    assert endpoint is not None
    assert (endpoint.base_url, endpoint.api_key, endpoint.model) == (
        "http://127.0.0.1:11434/v1",
        "k",
        "llama3",
    )


def test_settings_win_over_the_environment() -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:8000/v1", api_key=SecretStr("s"))
    env = {"OPENAI_BASE_URL": "http://elsewhere/v1", "OPENAI_API_KEY": "k"}
    endpoint = resolve_endpoint(settings, env)

    assert endpoint is not None
    assert (endpoint.base_url, endpoint.api_key) == ("http://127.0.0.1:8000/v1", "s")


def test_a_local_server_needs_no_key() -> None:
    endpoint = resolve_endpoint(LLMSettings(base_url="http://127.0.0.1:8080/v1"), {})

    assert endpoint is not None and endpoint.api_key == "not-needed"


def test_the_description_never_shows_the_key() -> None:
    settings = LLMSettings(api_key=SecretStr("sekret-123"))
    endpoint = resolve_endpoint(settings, {})

    assert endpoint is not None
    assert "sekret" not in endpoint.describe()
    assert "api.openai.com" in endpoint.describe()


def test_the_message_says_what_to_set() -> None:
    text = not_configured(LLMSettings(model="qwen2.5"))

    for name in (
        "MAILTRIAGE_LLM__BASE_URL",
        "OPENAI_BASE_URL",
        "MAILTRIAGE_LLM__API_KEY",
        "OPENAI_API_KEY",
        "MAILTRIAGE_LLM__MODEL",
        "'qwen2.5'",
    ):
        assert name in text
