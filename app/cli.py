"""The ``claimgate`` command: serve, sync, migrate, cache, keys, demo, simulate, import,
template."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Coroutine
from datetime import date
from pathlib import Path
from typing import Any

from app import lifecycle
from app.observability.logs import configure as configure_logging
from app.settings import Settings, get_settings

log = logging.getLogger("claimgate")


def ensure_servers(settings: Settings) -> Settings:
    """Start the embedded PostgreSQL/Redis for whatever URL is not configured; return settings
    that name them (exported to the environment, so uvicorn workers see the same)."""
    if not settings.embedded:
        return settings
    from app import embedded

    if settings.database_url is None:
        url = embedded.start_postgres(settings.data_dir)
        os.environ["CLAIMGATE_DATABASE_URL"] = url
        print(f"embedded PostgreSQL under {settings.data_dir / 'pg'}", file=sys.stderr)
    if settings.redis_url is None:
        server = embedded.start_redis(settings.data_dir)
        os.environ["CLAIMGATE_REDIS_URL"] = server.url
        print(f"embedded Redis at {server.url}", file=sys.stderr)
    get_settings.cache_clear()
    return get_settings()


def migrate(settings: Settings) -> None:
    from alembic import command
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    url = settings.direct_database_url  # DDL and Alembic's session never go through PgBouncer
    assert url is not None
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = get_settings()
    workers = args.workers or settings.workers
    writer = settings.writer == "process"
    own_dir = None
    if (workers > 1 or writer) and settings.metrics:
        # Each process (the workers, the writer) keeps its metrics in files here; any worker's
        # /metrics sums them. Named before anything imports prometheus_client, which picks
        # its mode once, at import: a single worker is this very process.
        if settings.metrics_dir is None:
            own_dir = Path(tempfile.mkdtemp(prefix="claimgate-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir or own_dir)
    settings = ensure_servers(settings)
    migrate(settings)
    if args.demo:
        from app.demo import load_demo

        _run(load_demo(settings, host=args.host or settings.host, port=args.port or settings.port))
    sync = settings.run_sync_worker and not args.no_sync
    if not sync:
        os.environ["CLAIMGATE_RUN_SYNC_WORKER"] = "false"
    from app.api.server import uvicorn_options
    from app.observability import metrics

    if metrics.multiprocess_dir():
        metrics.prepare_multiprocess_dir(Path(os.environ[metrics.MULTIPROC_ENV]))
    writer_process = None
    if writer:
        from app.api.writer_process import WriterProcess

        writer_process = WriterProcess(
            dict(os.environ), stop_wait_s=settings.shutdown_timeout_s * 2 + 5
        )
        # The check workers forward the write side there; the sync worker runs there too.
        os.environ["CLAIMGATE_WRITER_SOCKET"] = writer_process.socket
        os.environ["CLAIMGATE_RUN_SYNC_WORKER"] = "false"
    get_settings.cache_clear()  # the app factory reads the settings again
    try:
        if writer_process is not None and not writer_process.start(settings.writer_start_wait_s):
            log.warning("the writer process does not answer yet; serving checks meanwhile")
        uvicorn.run(
            "app.api.main:create_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=workers,
            **uvicorn_options(settings),
        )
    finally:
        if writer_process is not None:
            writer_process.stop()
        if own_dir is not None:
            metrics.remove_multiprocess_dir(own_dir)
    return 0


async def _sync_forever(settings: Settings) -> None:
    from app.api.runtime import make_redis
    from app.db.engine import make_engine
    from app.sync.worker import SyncWorker

    engine, redis = make_engine(settings), make_redis(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = SyncWorker(
        engine,
        redis,
        batch_size=settings.sync_batch_size,
        poll_interval_s=settings.sync_poll_interval_s,
        verify_interval_s=settings.verify_interval_s,
        listen_url=settings.direct_database_url,
    )
    run, stopping = asyncio.create_task(worker.run(stop)), asyncio.create_task(stop.wait())
    folding = None
    if settings.sync_metrics_port:
        from app.observability.metrics import serve_worker_metrics

        # Held in a name: a task nobody holds may be collected before it ends.
        folding = serve_worker_metrics(worker, settings.host, settings.sync_metrics_port, stop)
    log.info("sync worker running; SIGTERM or Ctrl-C stops it")
    try:
        await asyncio.wait([run, stopping], return_when=asyncio.FIRST_COMPLETED)
        # A round under way may finish (a full rebuild can take long); past the bound it is
        # cancelled, which is safe: a replayed outbox row changes nothing (version guard).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run, settings.shutdown_timeout_s)
    finally:
        stopping.cancel()
        if folding is not None:
            folding.cancel()
        await redis.aclose()
        await engine.dispose()
    log.info("sync worker stopped")


def cmd_sync(_: argparse.Namespace) -> int:
    settings = ensure_servers(get_settings())
    migrate(settings)
    _run(_sync_forever(settings))
    return 0


def cmd_migrate(_: argparse.Namespace) -> int:
    migrate(ensure_servers(get_settings()))
    print("database migrated to head")
    return 0


async def _cache(settings: Settings, action: str, repair: bool) -> int:
    from app.api.runtime import make_redis
    from app.db.engine import make_engine
    from app.sync.mirror import rebuild, verify

    engine, redis = make_engine(settings), make_redis(settings)
    try:
        if action == "rebuild":
            r = await rebuild(engine, redis)
            print(f"rebuilt: {r.projections} projections, {r.written} written, {r.seconds:.1f}s")
            return 0
        v = await verify(engine, redis, repair=repair)
        print(
            f"verified {v.checked} projections: {v.missing} missing, {v.stale} stale, "
            f"{v.differing} differing, {v.repaired} repaired"
        )
        drift = v.missing + v.stale + v.differing
        return 0 if drift == 0 or repair else 1
    finally:
        await redis.aclose()
        await engine.dispose()


def cmd_cache(args: argparse.Namespace) -> int:
    settings = ensure_servers(get_settings())
    code: int = _run(_cache(settings, args.action, not args.no_repair))
    return code


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    from app.api.runtime import make_redis
    from app.auth.keys import create_key, revoke_key
    from app.cache.layout import keys_channel
    from app.cache.topology import publish
    from app.codes import normalize
    from app.db.engine import make_engine

    engine, redis = make_engine(settings), make_redis(settings)
    try:
        async with engine.begin() as conn:
            if args.action == "create":
                insts = [normalize(i) for i in args.institution or []]
                key_id, raw = await create_key(conn, args.role, insts, args.label or "")
                print(raw)
                print(
                    f"key id {key_id}, role {args.role}; shown once — store it now", file=sys.stderr
                )
            else:
                n = await revoke_key(conn, args.key)
                print(f"revoked {n} key(s)")
        try:
            await publish(redis, keys_channel(redis), "changed")
        except Exception:
            print(
                "note: Redis unreachable; workers pick the change up within "
                f"{settings.key_refresh_interval_s}s",
                file=sys.stderr,
            )
    finally:
        await redis.aclose()
        await engine.dispose()


def cmd_keys(args: argparse.Namespace) -> int:
    settings = ensure_servers(get_settings())
    migrate(settings)
    try:
        _run(_keys(settings, args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import load_demo

    settings = ensure_servers(get_settings())
    migrate(settings)
    _run(load_demo(settings, host=settings.host, port=settings.port))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from app.simulate import simulate_file

    return simulate_file(Path(args.file))


async def _replay(settings: Settings, args: argparse.Namespace) -> Any:
    from app.api.runtime import make_redis
    from app.cache.l1 import L1Cache
    from app.checks.service import CheckService
    from app.codes import practitioner_token
    from app.db.engine import make_engine
    from app.decisions.replay import replay

    engine, redis = make_engine(settings), make_redis(settings)  # Redis is never asked
    checks = CheckService(
        redis=redis, engine=engine, l1=L1Cache(0), pii_secret=settings.pii_secret, memo_size=0
    )
    try:
        return await replay(
            engine,
            checks,
            since=args.since,
            institution=args.institution.strip().upper() if args.institution else None,
            practitioner_token=(
                practitioner_token(args.practitioner.strip().upper(), settings.pii_secret)
                if args.practitioner
                else None
            ),
        )
    finally:
        await redis.aclose()
        await engine.dispose()


def cmd_decisions(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".json", ".xlsx"):
        print("--out: name a .json or .xlsx file", file=sys.stderr)
        return 2
    result = _run(_replay(ensure_servers(get_settings()), args))
    data = result.as_xlsx() if out is not None and out.suffix.lower() == ".xlsx" else None
    if out is None:
        sys.stdout.buffer.write(result.as_json() + b"\n")
    else:
        out.write_bytes(data if data is not None else result.as_json())
    s = result.summary()
    print(
        f"{s['lines_rejudged']} lines re-judged in {s['seconds']} s "
        f"({s['lines_per_second']} a second): {s['changed']} would now differ "
        f"({s['deny_to_allow']} deny→allow, {s['allow_to_deny']} allow→deny)",
        file=sys.stderr,
    )
    return 0


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a date as YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="claimgate", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "serve", help="run the API (and the sync worker); embedded servers if no URLs"
    )
    s.add_argument("--demo", action="store_true", help="load the demo data set and print keys")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int)
    s.add_argument("--no-sync", action="store_true", help="do not run the sync worker in-process")
    s.set_defaults(fn=cmd_serve)

    sub.add_parser("sync", help="run the outbox sync worker alone").set_defaults(fn=cmd_sync)
    sub.add_parser("migrate", help="migrate the database to head").set_defaults(fn=cmd_migrate)

    c = sub.add_parser("cache", help="rebuild or verify the Redis mirror")
    c.add_argument("action", choices=["rebuild", "verify"])
    c.add_argument("--no-repair", action="store_true", help="verify: report drift only")
    c.set_defaults(fn=cmd_cache)

    k = sub.add_parser("keys", help="issue or revoke API keys")
    ksub = k.add_subparsers(dest="action", required=True)
    kc = ksub.add_parser("create", help="print a new key once")
    kc.add_argument("--role", required=True, choices=["his", "gateway", "agency", "ops"])
    kc.add_argument("--institution", action="append", help="institution a his key may check")
    kc.add_argument("--label")
    kr = ksub.add_parser("revoke", help="revoke by key id or prefix")
    kr.add_argument("key")
    k.set_defaults(fn=cmd_keys)

    sub.add_parser("demo", help="load the demo data set into the configured servers").set_defaults(
        fn=cmd_demo
    )
    sm = sub.add_parser("simulate", help="what-if: run the policy engine on a JSON file of events")
    sm.add_argument("file")
    sm.set_defaults(fn=cmd_simulate)
    d = sub.add_parser("decisions", help="the decision log: re-judge logged lines")
    dsub = d.add_subparsers(dest="action", required=True)
    dr = dsub.add_parser(
        "replay",
        help="re-judge the lines logged since a day against today's truth; list those whose "
        "decision would now differ (deny→allow, allow→deny)",
    )
    dr.add_argument("--since", required=True, type=_day, help="first day answered (YYYY-MM-DD)")
    dr.add_argument("--institution", help="only this institution's lines")
    dr.add_argument("--practitioner", help="only this practitioner's (code or ID number)")
    dr.add_argument("--out", help="write FILE.json or FILE.xlsx (default: JSON on stdout)")
    d.set_defaults(fn=cmd_decisions)
    from app.interchange.cli import add_commands

    add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    configure_logging(
        os.environ.get("CLAIMGATE_LOG_FORMAT", "json"),
        os.environ.get("CLAIMGATE_LOG_LEVEL", "INFO"),
    )
    args = build_parser().parse_args(argv)
    lifecycle.exit_on_sigterm()
    try:
        code: int = args.fn(args)
    except KeyboardInterrupt:  # Ctrl-C before or after the server's own handling of it
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
