"""A Python load generator for machines without ``wrk``: asyncio + httpx in its own process,
closed loop over ``connections`` keep-alive connections, the same bodies file and result line.

``python -m loadtests.pyload URL BODIES AUTH DURATION_S CONNECTIONS``
"""

from __future__ import annotations

import asyncio
import random
import sys
import time

import httpx
import orjson


async def run(url: str, bodies: list[bytes], auth: str, duration_s: float, conns: int) -> None:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {auth}"
    lat: list[float] = []
    errors = non2xx = 0
    t0 = time.monotonic()
    end = t0 + duration_s
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)

    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=10.0) as client:

        async def loop(seed: int) -> None:
            nonlocal errors, non2xx
            i = random.Random(seed).randrange(len(bodies))
            while (now := time.monotonic()) < end:
                i = (i + 1) % len(bodies)
                try:
                    r = await client.post(url, content=bodies[i])
                except httpx.HTTPError:
                    errors += 1
                    continue
                lat.append(time.monotonic() - now)
                if not 200 <= r.status_code < 400:
                    non2xx += 1

        await asyncio.gather(*(loop(k) for k in range(conns)))
    elapsed = time.monotonic() - t0
    lat.sort()

    def pct(p: float) -> int:
        return int(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e6) if lat else 0

    out = {
        "requests": len(lat) + errors,
        "duration_us": int(elapsed * 1e6),
        "errors": errors,
        "non2xx": non2xx,
        "p50_us": pct(50),
        "p99_us": pct(99),
        "p999_us": pct(99.9),
        "max_us": int(lat[-1] * 1e6) if lat else 0,
    }
    print("CGRESULT " + orjson.dumps(out).decode(), flush=True)


def main(argv: list[str]) -> None:
    url, bodies_file, auth, duration, conns = argv[:5]
    with open(bodies_file, "rb") as fh:
        bodies = [ln.rstrip(b"\n") for ln in fh if ln.strip()]
    asyncio.run(run(url, bodies, auth, float(duration), int(conns)))


if __name__ == "__main__":
    main(sys.argv[1:])
