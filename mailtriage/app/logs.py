"""Logging: loguru, configured once at start-up by the CLI, never at import.

Messages are fixed text with values bound as fields (``logger.bind(...)`` or keyword
arguments), so records group, and the JSON sink carries the values as fields. The
standard library's loggers (uvicorn, httpx, openai) are routed into loguru.
"""

from __future__ import annotations

import logging
import sys

from loguru import logger


class _InterceptHandler(logging.Handler):
    """Hands standard ``logging`` records to loguru at the same level."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Send loguru's records to standard error, as text or as JSON lines."""
    logger.remove()
    if json:
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(
            sys.stderr,
            level=level,
            colorize=False,
            format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {message} {extra}",
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "openai"):
        std = logging.getLogger(name)
        std.handlers = [_InterceptHandler()]
        std.propagate = False
