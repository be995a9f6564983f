"""Reading a request body as JSON, strictly: the one reading every route gets.

What a lenient parser lets through changes meaning without a word:

- a key given twice: every parser that builds a dict keeps one of them silently (the stdlib and
  orjson the last, other tools the first), so ``{"emergency": false, "emergency": true}`` is a
  deny to a proxy or an audit tool and an allow to us. Refused: 422 naming the field;
- ``NaN``, ``Infinity``: not JSON (RFC 8259 §6), though the stdlib reads them;
- a body in UTF-16 or UTF-32: the stdlib guesses the encoding; JSON between systems is UTF-8
  (RFC 8259 §8.1), as orjson on the fast path reads it.

A body that is not JSON is answered 400 ``MALFORMED_BODY`` (app.api.problems), a duplicate key
422 ``VALIDATION_FAILED``; both only after the key is judged, as every refusal of a body is.

Duplicates are found with the stdlib's ``object_pairs_hook``, which sees every member before
the dict is built; the path of the first one is looked for only when there is one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

KeyPath = tuple[str | int, ...]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class _Duplicate(Exception):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Duplicate
    return d


class _Marked(dict[str, Any]):
    """An object that had a duplicate key, and which (the first)."""

    dup: str


def _marking(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = _Marked(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                d.dup = k
                break
            seen.add(k)
    return d


def _first_marked(v: Any, at: KeyPath) -> KeyPath | None:
    if isinstance(v, dict):
        if isinstance(v, _Marked) and hasattr(v, "dup"):
            return (*at, v.dup)
        items: Any = v.items()
    elif isinstance(v, list):
        items = enumerate(v)
    else:
        return None
    for k, child in items:
        found = _first_marked(child, (*at, k))
        if found is not None:
            return found
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def loads(raw: bytes | str) -> Any:
    """The JSON value of ``raw``; ValueError (not JSON, or not UTF-8) or :class:`DuplicateKey`."""
    text = _text(raw)
    try:
        return json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
    except _Duplicate:
        path = duplicate_key(text)
        assert path is not None
        raise DuplicateKey(path) from None


def duplicate_key(raw: bytes | str) -> KeyPath | None:
    """Where the first key given twice in one object is (object path, then the key), or None.
    ``raw`` must be JSON."""
    return _first_marked(json.loads(_text(raw), object_pairs_hook=_marking), ())


class DuplicateKey(ValueError):
    def __init__(self, path: KeyPath) -> None:
        super().__init__("a key is given twice")
        self.path = path


def malformed(message: str) -> RequestValidationError:
    """The error a body that is not JSON raises; app.api.problems answers it 400."""
    return RequestValidationError(
        [{"type": "json_invalid", "loc": ("body",), "msg": message, "input": None}]
    )


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if not body:
                raise malformed("the body is empty; send a JSON object")
            try:
                self._json = loads(body)
            except DuplicateKey as dup:
                raise RequestValidationError(
                    [
                        {
                            "type": "duplicate_key",
                            "loc": ("body", *dup.path),
                            "msg": "is given more than once in its object; send each field once",
                            "input": None,
                        }
                    ]
                ) from None
            except json.JSONDecodeError as exc:  # its message never quotes the body
                raise malformed(f"the body is not JSON: {exc.msg} at character {exc.pos}") from None
            except (ValueError, RecursionError):
                # Not UTF-8 (UnicodeDecodeError is a ValueError), NaN, or nested past what the
                # parser follows.
                raise malformed("the body is not JSON (RFC 8259, in UTF-8)") from None
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose body, on a write method, is read by :class:`StrictJSONRequest` before
    FastAPI looks at it: FastAPI's own reading then finds the value already parsed, and a
    refusal raised here reaches the app's validation handler, which judges the key first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            strict = StrictJSONRequest(request.scope, request.receive)
            if strict.method in _WITH_BODY:
                await strict.json()
            return await inner(strict)

        return handler
