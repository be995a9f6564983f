"""The application object: FastAPI, with the check routes' requests taken past FastAPI's own
outer layers.

Every request FastAPI receives first asks whether native OpenTelemetry is configured (three
provider look-ups, each reading the environment), then passes Starlette's last-resort error
handler (a closure around ``send``), FastAPI's exception telemetry and its body-limit layer,
before it reaches the first middleware of ours. For a check answered from a remembered verdict
that was a fifth of the Python work of the request (docs/performance.md), and none of it does
anything here: telemetry is off, no body limit is set on the app (the edge guard bounds bodies),
and :class:`~app.api.problems.ContainErrors`, inside them, already turns any exception into a
500. So a request for a check route goes straight to our own outermost middleware — the same
stack from there on, so every guard, count and log line of ours still applies.

Decided once, when the application starts: if OpenTelemetry is configured by then, or the app
is given a ``root_path`` or a ``max_body_size``, every request takes FastAPI's way.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.interfaces.national.endpoints import PREFIX as NATIONAL

_CHECK_PATHS = frozenset({"/v1/checks", "/v1/checks/batch"})
_NATIONAL = NATIONAL + "/"


class ClaimgateApp(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front: ASGIApp | None = None  # our outermost middleware, once started

    def open_front(self) -> None:
        """Take check requests straight to our own middleware from now on, if nothing FastAPI
        would do before it is in use (called at start-up)."""
        # FastAPI's own switch (0.165); a FastAPI without it is one this was not checked
        # against, so it keeps FastAPI's way.
        telemetry = getattr(self, "_native_telemetry", None)
        if (
            self.root_path
            or self.max_body_size is not None
            or telemetry is None
            or telemetry.enabled()
            or not self.user_middleware
        ):
            self.front = None
            return
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        ours: Any = self.user_middleware[0].cls
        layer: Any = self.middleware_stack
        while layer is not None and type(layer) is not ours:
            layer = getattr(layer, "app", None)
        self.front = layer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if (
            front is not None
            and scope["type"] == "http"
            and ((path := scope["path"]) in _CHECK_PATHS or path.startswith(_NATIONAL))
        ):
            scope["app"] = self
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
