"""What every tool of the agent is: a name, a description written for the model, a
pydantic parameter model (its JSON schema is what the model sees), and ``run``.

``Tool.call`` is the one entry point: it validates the model's JSON arguments,
runs the tool and turns every failure into a ``ToolResult`` that answers the model
(``error`` with a message it can act on, ``no_data`` when nothing matched), so a
failing tool never ends the conversation.

Scope: a tool reaches data only through ``ToolContext.store``, which the caller's
token confined before the conversation began (``Store.confined``). Arguments come
from the model and may name any tenant; the store refuses what the caller may not
see, whatever the model was told by the log text it read.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mailtriage.agents.window import Resolved, resolve_window
from mailtriage.app.store.base import Scope, Store
from mailtriage.errors import (
    ForbiddenError,
    MailtriageError,
    NotFoundError,
    QueryError,
    StoreError,
)

ToolStatus = Literal["success", "error", "no_data"]


class ToolResult(BaseModel):
    """What a tool answers: a status, a message for the model, and the data."""

    model_config = ConfigDict(extra="forbid")

    status: ToolStatus
    message: str = ""
    data: Any = None


@dataclass(slots=True)
class ToolContext:
    """What tools may use: the caller's confined store and the clock."""

    store: Store
    tenant: str | None
    now: float = field(default_factory=time.time)


class Params(BaseModel):
    """Base of the parameter models: unknown arguments are an error the model
    sees, not something silently dropped."""

    model_config = ConfigDict(extra="forbid")


_TIME_HELP = (
    "RFC 3339 (2026-12-03T16:00:00Z) or relative like -5m, -2h, -1d. A relative "
    "start counts back from now, or from the end of the data when the log ended "
    "earlier (the result says so)."
)


class WindowParams(Params):
    """The time window and the tenant and recipient-domain filters."""

    since: str | None = Field(default=None, description=f"Start. {_TIME_HELP}")
    until: str | None = Field(default=None, description="End (exclusive).")
    tenant: str | None = Field(default=None, description="Only this tenant.")
    domain: str | None = Field(default=None, description="Only this recipient domain.")


class RouteParams(WindowParams):
    """A window plus the transport and relay filters."""

    transport: str | None = Field(
        default=None, description="Delivery agent: smtp, lmtp, local, virtual, ..."
    )
    relay: str | None = Field(
        default=None, description="Relay or MDA host Postfix delivered to."
    )


class Tool(ABC):
    """One tool: see the module docstring."""

    name: ClassVar[str]
    description: ClassVar[str]
    params: ClassVar[type[Params]]

    def spec(self) -> dict[str, Any]:
        """The tool as the chat-completions API declares a function."""
        schema = self.params.model_json_schema()
        schema.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": schema,
            },
        }

    @abstractmethod
    def run(self, ctx: ToolContext, params: Any) -> ToolResult:
        """Answer for validated ``params`` (an instance of ``self.params``)."""

    def call(self, ctx: ToolContext, arguments: str) -> ToolResult:
        """Validate ``arguments`` (JSON text from the model) and run."""
        try:
            params = self.params.model_validate_json(arguments or "{}")
        except ValidationError as exc:
            return ToolResult(status="error", message=_invalid(exc))
        try:
            return self.run(ctx, params)
        except ForbiddenError as exc:
            return ToolResult(status="error", message=f"refused: {exc}")
        except NotFoundError as exc:
            return ToolResult(status="no_data", message=str(exc))
        except QueryError as exc:
            return ToolResult(status="error", message=f"invalid query: {exc}")
        except StoreError as exc:
            logger.warning("tool failed", tool=self.name, error=str(exc))
            return ToolResult(status="error", message="the store failed; try later")
        except MailtriageError as exc:
            return ToolResult(status="error", message=str(exc))
        except Exception as exc:
            logger.opt(exception=exc).error("tool crashed", tool=self.name)
            return ToolResult(
                status="error", message=f"{self.name} failed unexpectedly"
            )


def _invalid(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
        for e in exc.errors()[:5]
    ]
    return "invalid arguments: " + "; ".join(problems)


def window(ctx: ToolContext, params: WindowParams, **filters: Any) -> Resolved:
    """The scope a tool's window parameters name, resolved against the data."""
    scope = Scope(tenant=params.tenant, domain=params.domain, **filters)
    return resolve_window(ctx.store, scope, params.since, params.until, now=ctx.now)


def route(ctx: ToolContext, params: RouteParams) -> Resolved:
    """The scope of a window with the transport and relay filters."""
    return window(ctx, params, transport=params.transport, relay=params.relay)
