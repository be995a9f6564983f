"""``python -m loadtests.serve APP PORT WORKERS``: uvicorn with exactly ``claimgate serve``'s
settings, for the baselines that are not claimgate (``bare``, ``naive``)."""

from __future__ import annotations

import sys

import uvicorn

from app.api.server import uvicorn_options
from app.settings import get_settings


def main(argv: list[str]) -> None:
    app, port, workers = argv[0], int(argv[1]), int(argv[2])
    uvicorn.run(
        app,
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        **uvicorn_options(get_settings()),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
