"""Errors as ``application/problem+json`` (RFC 9457), from one set of handlers.

Every error the API returns goes through ``install_problem_handlers``: mailtriage's
own exceptions by a table of their classes, FastAPI's request validation errors,
and Starlette's ``HTTPException`` (404 for an unknown path, 405, ...). A bad
parameter is named in ``detail`` and in the ``parameter`` member (RFC 9457 section
3.2 allows such extension members); nothing but an unexpected failure is a 500, and
that one says nothing about its cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailtriage.errors import (
    AuthError,
    BusyError,
    ConfigError,
    ForbiddenError,
    InputError,
    LLMError,
    MailtriageError,
    NotFoundError,
    QueryError,
    StoreError,
)

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first class an error is an instance of decides.
_STATUS: Sequence[tuple[type[MailtriageError], int]] = (
    (ForbiddenError, 403),
    (AuthError, 401),
    (QueryError, 400),
    (InputError, 400),
    (NotFoundError, 404),
    (BusyError, 429),
    (LLMError, 503),
    (StoreError, 503),
    (ConfigError, 500),
)


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field("about:blank", examples=["about:blank"])
    title: str = Field(examples=["Bad Request"])
    status: int = Field(examples=[400])
    detail: str = Field(examples=["query parameter 'since': not a time: 'yesterday'"])
    instance: str | None = Field(None, examples=["/v1/deliveries"])
    parameter: str | None = Field(None, examples=["since"])


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    parameter: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        parameter=parameter,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error statuses a route can return."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {}},
        }
        for status in statuses
    }


def status_of(exc: MailtriageError) -> int:
    """The HTTP status for one of mailtriage's errors."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


async def _mailtriage_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MailtriageError)
    status = status_of(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, BusyError):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="mailtriage"'
    detail = str(exc)
    if status >= 500:
        logger.error("request failed", path=request.url.path, error=detail)
        if isinstance(exc, StoreError):
            detail = "the store is unavailable; see the service log"
    parameter = exc.parameter if isinstance(exc, QueryError) else None
    return problem_response(
        status,
        detail,
        instance=request.url.path,
        parameter=parameter,
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(part) for part in first.get("loc", ())]
    kind = where[0] if where else "request"
    name = ".".join(where[1:]) or kind
    message = str(first.get("msg", "invalid value"))
    detail = f"{kind} parameter '{name}': {message}"
    if kind == "body":
        detail = f"body '{name}': {message}" if where[1:] else f"body: {message}"
    return problem_response(
        422, detail, instance=request.url.path, parameter=name if where else None
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = (
        exc.detail
        if isinstance(exc.detail, str)
        else HTTPStatus(exc.status_code).phrase
    )
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such path: {request.url.path}"
    return problem_response(
        exc.status_code,
        detail,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.opt(exception=exc).error("request failed", path=request.url.path)
    return problem_response(
        500, "internal error; see the service log", instance=request.url.path
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the one set of exception handlers the API has."""
    app.add_exception_handler(MailtriageError, _mailtriage_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
