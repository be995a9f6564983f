"""The one typed settings object; every value comes from a `CLAIMGATE_` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRET = "dev-only-not-secret"


class Settings(BaseSettings):
    # A refused value is never repeated in the error: URLs carry passwords.
    model_config = SettingsConfigDict(
        env_prefix="CLAIMGATE_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    environment: str = Field(
        "development",
        description="development | production; production refuses placeholder secrets",
    )
    database_url: str | None = Field(
        None, description="postgresql+asyncpg://...; unset = start an embedded PostgreSQL"
    )
    database_direct_url: str | None = Field(
        None,
        description="a direct PostgreSQL URL (not through PgBouncer) for migrations and the sync "
        "worker's LISTEN; unset = CLAIMGATE_DATABASE_URL",
    )
    database_pgbouncer: bool = Field(
        False,
        description="CLAIMGATE_DATABASE_URL goes through PgBouncer in transaction mode: no "
        "statement cache, uniquely named prepared statements, no session settings at connect",
    )
    redis_url: str | None = Field(
        None,
        description="redis://host:port/db, redis+sentinel://host:port,.../master[/db] or "
        "redis+cluster://host:port,...; unset = start an embedded Redis",
    )
    data_dir: Path = Field(Path(".claimgate"), description="where the embedded servers keep data")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
    run_sync_worker: bool = Field(True, description="run the outbox sync worker inside serve")
    shutdown_timeout_s: int = Field(
        5,
        ge=1,
        description="on SIGTERM/SIGINT: in-flight requests get this long to finish, then the "
        "buffered records this long to be written (the sync worker: its round this long)",
    )

    pii_secret: str = Field(
        _PLACEHOLDER_SECRET,
        description="HMAC key for resident ID numbers; must be set outside development",
    )

    batch_max_lines: int = Field(1000, ge=1, le=100_000)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    import_max_bytes: int = Field(
        64 << 20,
        ge=1024,
        description="largest spreadsheet POST /v1/admin/imports accepts (a 100,000-line "
        "roster is about 8 MB as XLSX, 20 MB as CSV)",
    )
    max_inflight: int = Field(
        1024,
        ge=1,
        description="requests past the edge (key known, body read) per process; past it a fast "
        "503 OVERLOADED",
    )
    max_reading: int = Field(
        256, ge=1, description="requests whose body is still arriving, per process; past it 503"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="a request's headers must arrive within this; else 408 and close"
    )
    body_timeout_s: float = Field(
        20.0, gt=0, description="a request's body must arrive within this after its headers"
    )
    keep_alive_timeout_s: int = Field(5, ge=1, description="an idle connection is closed after")
    forwarded_allow_ips: str = Field(
        "",
        description="proxies whose X-Forwarded-For/-Proto are believed (IPs or CIDRs, comma "
        "separated); empty = none",
    )
    l1_size: int = Field(
        100_000,
        ge=0,
        description="in-process cache entries (documents, and verdicts as many); 0 disables it",
    )

    writer: Literal["process", "thread", "inline"] = Field(
        "process",
        description="where admin writes and the sync worker run: process = `claimgate serve` "
        "starts one writer process (the same app on a private Unix socket) and its check "
        "workers forward /v1/admin/... to it (an app built without one, as by an ASGI server "
        "run directly or the test fixtures, falls back to thread); thread = an event loop of "
        "their own in a thread of each serving process; inline = on the loop that answers checks",
    )
    writer_socket: str | None = Field(
        None,
        description="internal: the writer process's Unix socket, set by `claimgate serve` for "
        "its check workers",
    )
    writer_child: bool = Field(
        False, description="internal: set by `claimgate serve` for the writer process it starts"
    )
    writer_nice: int = Field(
        0,
        ge=0,
        le=19,
        description="CPU niceness added to the writer process (0 = the check workers' priority)",
    )
    writer_timeout_s: float = Field(
        600.0,
        gt=0,
        description="how long a check worker waits for the writer process's answer to a "
        "forwarded request (a large import takes minutes); past it 503 WRITER_UNAVAILABLE",
    )
    writer_start_wait_s: float = Field(
        30.0,
        ge=0,
        description="how long `claimgate serve` waits for its writer process to answer before "
        "it starts serving checks anyway (admin requests answer 503 until the writer is up)",
    )

    writer_wait_s: float = Field(
        30.0,
        gt=0,
        description="how long a write on the writer thread may wait for one of the writer's "
        "pool connections: writes queue there behind each other, and a write must not fail "
        "because others came first",
    )

    db_pool_size: int = Field(10, ge=1)
    db_pool_overflow: int = Field(5, ge=0)
    db_timeout_s: float = Field(2.0, gt=0, description="connect and statement timeout")
    redis_timeout_s: float = Field(0.25, gt=0, description="socket timeout of one Redis call")
    redis_pool_size: int = Field(64, ge=1)

    max_staleness_s: float = Field(
        0.5,
        ge=0,
        description="cached answers lag the truth at most this long; 0 disables the watch",
    )
    staleness_probe_interval_s: float = Field(0.1, gt=0, description="how often the lag is probed")
    sync_poll_interval_s: float = Field(1.0, gt=0, description="outbox poll when no NOTIFY arrives")
    sync_batch_size: int = Field(500, ge=1)
    verify_interval_s: float = Field(
        300.0, ge=0, description="periodic Redis-vs-PostgreSQL reconciliation; 0 disables it"
    )
    attempts_flush_interval_s: float = Field(
        0.2,
        gt=0,
        le=60,
        description="sanctioned-attempt records are written this often: the most a killed "
        "process can lose",
    )
    attempts_buffer_size: int = Field(
        100_000, ge=1, description="sanctioned-attempt records held while PostgreSQL is away"
    )
    national_emergency_med_types: str = Field(
        "13,24",
        pattern=r"^[0-9]{2,6}(,[0-9]{2,6})*$",
        description="医疗类别 (med_type) codes the national interface reads as an emergency "
        "(13 急诊, 24 急诊转住院); a region adds its own codes",
    )
    log_format: str = Field(
        "json", pattern=r"^(json|text)$", description="json: one object per line; text: prose"
    )
    log_level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    log_checks: bool = Field(
        False,
        description="log a line for every check answered (else only those answered 4xx/5xx)",
    )
    metrics: bool = Field(True, description="count for GET /metrics (Prometheus)")
    metrics_fold_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="the plain counters of the check path are folded into the exported "
        "metrics this often (and before each scrape of the process scraped)",
    )
    metrics_dir: Path | None = Field(
        None,
        description="with several workers, prometheus_client's multiprocess folder; unset = "
        "a temporary folder serve creates and removes",
    )
    sync_metrics_port: int = Field(
        0, ge=0, le=65535, description="claimgate sync serves /metrics on this port; 0 = off"
    )
    decision_log: bool = Field(True, description="record every answered line (decision log)")
    decision_log_flush_interval_s: float = Field(
        0.5, gt=0, le=60, description="the decision log is written this often"
    )
    decision_log_buffer_size: int = Field(
        500_000, ge=1, description="decision-log records a process holds while PostgreSQL is away"
    )
    decision_log_retention_days: int = Field(
        400, ge=1, description="days of decision-log partitions kept; older ones are dropped"
    )
    key_refresh_interval_s: float = Field(
        5.0, gt=0, description="API keys are reloaded at least this often"
    )
    readiness_max_outbox_lag_s: float = Field(
        30.0, gt=0, description="/readyz fails when the oldest outbox row is older"
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url_readable(cls, url: str | None) -> str | None:
        if url is not None:
            from app.cache.topology import parse_redis_url

            parse_redis_url(url)  # a ValueError naming CLAIMGATE_REDIS_URL and the problem
        return url

    @property
    def direct_database_url(self) -> str | None:
        """Where migrations and LISTEN go: never through PgBouncer's transaction pooling."""
        return self.database_direct_url or self.database_url

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.environment != "development" and self.pii_secret == _PLACEHOLDER_SECRET:
            raise ValueError("CLAIMGATE_PII_SECRET must be set outside development")
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
