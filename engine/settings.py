"""The one settings object, built from the environment and ``.env`` in one place.

Every key is documented in ``.env.example``. Nothing else in Chorus reads ``os.environ``.
Values in the process environment win over ``.env``. Secrets (the Discord token, the Redis URL)
never appear in ``repr`` or logs.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.errors import EngineError


class SettingsError(EngineError):
    """A setting is missing or malformed; the message names it."""


class Secret(str):
    """A string that does not show itself in repr or f-string debugging."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"


def _ints(text: str, key: str) -> frozenset[int]:
    try:
        return frozenset(int(x) for x in text.replace(" ", ",").split(",") if x)
    except ValueError as exc:
        raise SettingsError(f"{key} must be a comma-separated list of numeric IDs, got {text!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Runtime settings (see ``.env.example`` for each key)."""

    discord_token: Secret = field(default=Secret(""), metadata={"env": "DISCORD_TOKEN", "secret": True})
    admin_user_ids: frozenset[int] = field(default=frozenset(), metadata={"env": "CHORUS_ADMIN_USER_IDS"})
    admin_role_ids: frozenset[int] = field(default=frozenset(), metadata={"env": "CHORUS_ADMIN_ROLE_IDS"})
    dev_guild_ids: frozenset[int] = field(default=frozenset(), metadata={"env": "CHORUS_DEV_GUILD_IDS"})
    corpus_dir: Path = field(default=Path("../shared/corpus"), metadata={"env": "CHORUS_CORPUS_DIR"})
    checkpoints_dir: Path = field(default=Path("checkpoints"), metadata={"env": "CHORUS_CHECKPOINTS_DIR"})
    soundfont: Path = field(default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), metadata={"env": "CHORUS_SOUNDFONT"})
    sample_rate: int = field(default=32000, metadata={"env": "CHORUS_SAMPLE_RATE", "min": 8000})
    synth_threads: int = field(default=2, metadata={"env": "CHORUS_SYNTH_THREADS", "min": 1})
    db_path: Path = field(default=Path("chorus.db"), metadata={"env": "CHORUS_DB_PATH"})
    data_dir: Path = field(default=Path(".chorus"), metadata={"env": "CHORUS_DATA_DIR"})
    queue: str = field(default="local", metadata={"env": "CHORUS_QUEUE", "choices": ("local", "celery")})
    redis_url: Secret = field(default=Secret("redis://127.0.0.1:6379/0"), metadata={"env": "CHORUS_REDIS_URL", "secret": True})
    workers: int = field(default=1, metadata={"env": "CHORUS_WORKERS", "min": 1})
    batch_max: int = field(default=4, metadata={"env": "CHORUS_BATCH_MAX", "min": 1})
    device: str = field(default="auto", metadata={"env": "CHORUS_DEVICE"})
    torch_threads: int = field(default=1, metadata={"env": "CHORUS_TORCH_THREADS", "min": 1})
    min_seconds: float = field(default=5.0, metadata={"env": "CHORUS_MIN_SECONDS", "min": 1})
    max_seconds: float = field(default=180.0, metadata={"env": "CHORUS_MAX_SECONDS", "min": 1})
    min_tempo: float = field(default=60.0, metadata={"env": "CHORUS_MIN_TEMPO", "min": 20})
    max_tempo: float = field(default=320.0, metadata={"env": "CHORUS_MAX_TEMPO", "min": 20})
    min_temperature: float = field(default=0.1, metadata={"env": "CHORUS_MIN_TEMPERATURE", "min": 0.01})
    max_temperature: float = field(default=2.0, metadata={"env": "CHORUS_MAX_TEMPERATURE", "min": 0.01})
    max_queue: int = field(default=50, metadata={"env": "CHORUS_MAX_QUEUE", "min": 1})
    user_cooldown_s: float = field(default=10.0, metadata={"env": "CHORUS_USER_COOLDOWN_S", "min": 0})
    user_max_pending: int = field(default=2, metadata={"env": "CHORUS_USER_MAX_PENDING", "min": 1})
    job_timeout_s: float = field(default=120.0, metadata={"env": "CHORUS_JOB_TIMEOUT_S", "min": 1})
    max_seed_bytes: int = field(default=1_048_576, metadata={"env": "CHORUS_MAX_SEED_BYTES", "min": 64})
    max_checkpoint_bytes: int = field(default=64 * 1024 * 1024, metadata={"env": "CHORUS_MAX_CHECKPOINT_BYTES", "min": 1024})
    upload_limit_bytes: int = field(default=10 * 1024 * 1024, metadata={"env": "CHORUS_UPLOAD_LIMIT_BYTES", "min": 1024})
    discord_api_base: str = field(default="", metadata={"env": "CHORUS_DISCORD_API_BASE"})
    discord_gateway: str = field(default="", metadata={"env": "CHORUS_DISCORD_GATEWAY"})
    log_level: str = field(default="INFO", metadata={"env": "CHORUS_LOG_LEVEL",
                                                      "choices": ("DEBUG", "INFO", "WARNING", "ERROR")})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, dotenv: Path | str | None = ".env") -> Settings:
        """Build the settings from ``.env`` (if present) overridden by the environment.

        Raises:
            SettingsError: a malformed value, named with its key.
        """
        values: dict[str, str] = {}
        if dotenv is not None and Path(dotenv).is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        kwargs = {}
        for f in fields(cls):
            key = f.metadata["env"]
            raw = values.get(key)
            if raw is None or raw.strip() == "":
                continue
            kwargs[f.name] = _convert(f, raw.strip(), key)
        settings = cls(**kwargs)
        settings.check()
        return settings

    def check(self) -> None:
        for lo, hi in (("min_seconds", "max_seconds"), ("min_tempo", "max_tempo"), ("min_temperature", "max_temperature")):
            if getattr(self, lo) > getattr(self, hi):
                raise SettingsError(f"{lo.upper()} ({getattr(self, lo)}) is above {hi.upper()} ({getattr(self, hi)})")

    def require(self, name: str) -> None:
        """Stop with a message naming the setting when a required one is empty."""
        if not getattr(self, name):
            key = next(f.metadata["env"] for f in fields(self) if f.name == name)
            raise SettingsError(f"{key} is not set (put it in .env or the environment; see .env.example)")


def _convert(f, raw: str, key: str):
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if "frozenset" in kind:
            return _ints(raw, key)
        if kind == "Path":
            return Path(raw).expanduser()
        if kind == "Secret":
            return Secret(raw)
        if kind == "int":
            value = int(raw)
        elif kind == "float":
            value = float(raw)
        else:
            value = raw.upper() if key == "CHORUS_LOG_LEVEL" else raw
    except ValueError as exc:
        raise SettingsError(f"{key} must be a {kind}, got {raw!r}") from exc
    if "min" in f.metadata and value < f.metadata["min"]:
        raise SettingsError(f"{key} must be at least {f.metadata['min']}, got {raw!r}")
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        raise SettingsError(f"{key} must be one of {', '.join(f.metadata['choices'])}, got {raw!r}")
    return value
