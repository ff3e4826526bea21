"""The bot's settings: Discord, Redis, the job queue, the database and the admin keys.

`BotSettings` extends the engine's `engine.settings.Settings`, so one ``BotSettings.from_env()``
reads every key once (``chorus serve``, ``chorus worker``); what goes to a worker process is
``settings.engine_only()``. Secrets (the Discord token, the Redis URL) never appear in ``repr``
or logs. Every key is in ``.env.example``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.settings import Settings, SettingsError, ids

__all__ = ["BotSettings", "Secret", "SettingsError"]


class Secret(str):
    """A string that does not show itself in repr or f-string debugging."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


@dataclass(frozen=True)
class BotSettings(Settings):
    """The engine's settings plus the bot's (see ``.env.example`` for each key)."""

    discord_token: Secret = field(default=Secret(""), metadata={"env": "DISCORD_TOKEN", "convert": Secret})
    admin_user_ids: frozenset[int] = field(default=frozenset(), metadata={"env": "CHORUS_ADMIN_USER_IDS", "convert": ids})
    admin_role_ids: frozenset[int] = field(default=frozenset(), metadata={"env": "CHORUS_ADMIN_ROLE_IDS", "convert": ids})
    dev_guild_ids: frozenset[int] = field(default=frozenset(), metadata={"env": "CHORUS_DEV_GUILD_IDS", "convert": ids})
    db_path: Path = field(default=Path("chorus.db"), metadata={"env": "CHORUS_DB_PATH", "home": True})
    data_dir: Path = field(default=Path(".chorus"), metadata={"env": "CHORUS_DATA_DIR", "home": True})
    queue: str = field(default="local", metadata={"env": "CHORUS_QUEUE", "choices": ("local", "celery")})
    redis_url: Secret = field(default=Secret("redis://127.0.0.1:6379/0"),
                              metadata={"env": "CHORUS_REDIS_URL", "convert": Secret})
    workers: int = field(default=1, metadata={"env": "CHORUS_WORKERS", "min": 1})
    batch_max: int = field(default=4, metadata={"env": "CHORUS_BATCH_MAX", "min": 1})
    batch_window_ms: float = field(default=50.0, metadata={"env": "CHORUS_BATCH_WINDOW_MS", "min": 0})
    max_queue: int = field(default=50, metadata={"env": "CHORUS_MAX_QUEUE", "min": 1})
    user_cooldown_s: float = field(default=10.0, metadata={"env": "CHORUS_USER_COOLDOWN_S", "min": 0})
    user_max_pending: int = field(default=2, metadata={"env": "CHORUS_USER_MAX_PENDING", "min": 1})
    job_timeout_s: float = field(default=120.0, metadata={"env": "CHORUS_JOB_TIMEOUT_S", "min": 1})
    seed_workers: int = field(default=1, metadata={"env": "CHORUS_SEED_WORKERS", "min": 1})
    # honest waits (bot/service/estimate.py): refuse a request whose estimated wait passes this (0 = never)
    max_wait_s: float = field(default=300.0, metadata={"env": "CHORUS_MAX_WAIT_S", "min": 0})
    # seconds one worker is taken to need per clip until the bot has timed some
    wait_prior_s: float = field(default=10.0, metadata={"env": "CHORUS_WAIT_PRIOR_S", "min": 0.1})
    # a local worker, as it starts, times a clip of this many styles; the estimate starts from that (0 = the prior)
    warm_styles: int = field(default=4, metadata={"env": "CHORUS_WARM_STYLES", "min": 0})
    # the one cap on a checkpoint's size: uploaded archives and what they unpack to, Redis transfers to workers
    max_checkpoint_bytes: int = field(default=64 * 1024 * 1024, metadata={"env": "CHORUS_MAX_CHECKPOINT_BYTES", "min": 1024})
    upload_limit_bytes: int = field(default=10 * 1024 * 1024, metadata={"env": "CHORUS_UPLOAD_LIMIT_BYTES", "min": 1024})
    # a clip or failure notice that did not get through is tried again after this, doubling each time
    delivery_retry_s: float = field(default=30.0, metadata={"env": "CHORUS_DELIVERY_RETRY_S", "min": 0.1})
    # retention after a job is delivered or failed (see bot/store/retention.py)
    keep_clips_days: float = field(default=3.0, metadata={"env": "CHORUS_KEEP_CLIPS_DAYS", "min": 0})
    keep_seeds_days: float = field(default=3.0, metadata={"env": "CHORUS_KEEP_SEEDS_DAYS", "min": 0})
    keep_tokens_days: float = field(default=1.0, metadata={"env": "CHORUS_KEEP_TOKENS_DAYS", "min": 0})
    prune_interval_s: float = field(default=3600.0, metadata={"env": "CHORUS_PRUNE_INTERVAL_S", "min": 0.1})
    # log the event loop's longest stall every this many seconds (0 = only at shutdown); bench/soak.py reads it
    loop_report_s: float = field(default=0.0, metadata={"env": "CHORUS_LOOP_REPORT_S", "min": 0})
    discord_api_base: str = field(default="", metadata={"env": "CHORUS_DISCORD_API_BASE"})
    discord_gateway: str = field(default="", metadata={"env": "CHORUS_DISCORD_GATEWAY"})
