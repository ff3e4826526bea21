"""The engine's settings, and the one reader of the environment that every settings object uses.

`Settings` holds what composing needs (checkpoints, SoundFont, audio, device, threads and the
limits a request is checked against). The bot's own keys (Discord, Redis, the queue, the
database) live in `bot.settings.BotSettings`, which extends this class, so ``chorus serve`` reads
the environment once and workers receive only the engine part (`Settings.engine_only`).

Every key is documented in ``.env.example``. Nothing else in Chorus reads ``os.environ``:
`Settings.from_env` (inherited by `BotSettings`) is the one place. Values in the process
environment win over ``.env``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import EngineError

S = TypeVar("S", bound="Settings")
# The repository root: the default CHORUS_HOME, against which relative data paths resolve.
REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(EngineError):
    """A setting is missing or malformed; the message names it."""


def ids(text: str) -> frozenset[int]:
    """A comma- or space-separated list of numeric IDs (for ``convert`` metadata).

    Raises:
        ValueError: an item is not a number.
    """
    return frozenset(int(x) for x in text.replace(" ", ",").split(",") if x)


@dataclass(frozen=True)
class Settings:
    """Engine settings (see ``.env.example`` for each key).

    Paths marked ``home`` (corpora, checkpoints; the bot's database and data folder) resolve
    against ``home`` (CHORUS_HOME, default the repository root) when relative, never against the
    current folder, so ``chorus`` finds them wherever it is started.
    """

    home: Path = field(default=REPO_ROOT, metadata={"env": "CHORUS_HOME"})
    corpus_dir: Path = field(default=Path("../shared/corpus"), metadata={"env": "CHORUS_CORPUS_DIR", "home": True})
    checkpoints_dir: Path = field(default=Path("checkpoints"), metadata={"env": "CHORUS_CHECKPOINTS_DIR", "home": True})
    soundfont: Path = field(default=Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), metadata={"env": "CHORUS_SOUNDFONT"})
    sample_rate: int = field(default=32000, metadata={"env": "CHORUS_SAMPLE_RATE", "min": 8000})
    synth_threads: int = field(default=2, metadata={"env": "CHORUS_SYNTH_THREADS", "min": 1})
    device: str = field(default="auto", metadata={"env": "CHORUS_DEVICE"})
    torch_threads: int = field(default=1, metadata={"env": "CHORUS_TORCH_THREADS", "min": 1})
    # how workers sample on the CPU: torch (batches step together) or the numpy twins (no torch
    # import: a worker starts ~2 s sooner; the same clips, byte for byte). A GPU always uses torch.
    sampler: str = field(default="torch", metadata={"env": "CHORUS_SAMPLER", "choices": ("torch", "numpy")})
    min_seconds: float = field(default=5.0, metadata={"env": "CHORUS_MIN_SECONDS", "min": 1})
    max_seconds: float = field(default=180.0, metadata={"env": "CHORUS_MAX_SECONDS", "min": 1})
    min_tempo: float = field(default=60.0, metadata={"env": "CHORUS_MIN_TEMPO", "min": 20})
    max_tempo: float = field(default=320.0, metadata={"env": "CHORUS_MAX_TEMPO", "min": 20})
    min_temperature: float = field(default=0.1, metadata={"env": "CHORUS_MIN_TEMPERATURE", "min": 0.01})
    max_temperature: float = field(default=2.0, metadata={"env": "CHORUS_MAX_TEMPERATURE", "min": 0.01})
    max_seed_bytes: int = field(default=1_048_576, metadata={"env": "CHORUS_MAX_SEED_BYTES", "min": 64})
    log_level: str = field(default="INFO", metadata={"env": "CHORUS_LOG_LEVEL",
                                                      "choices": ("DEBUG", "INFO", "WARNING", "ERROR")})

    @classmethod
    def from_env(cls: type[S], environ: Mapping[str, str] | None = None, dotenv: Path | str | None = ".env") -> S:
        """Build the settings from ``.env`` (if present) overridden by the environment.

        Called on a subclass (`bot.settings.BotSettings`) it reads that class's keys too.

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

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("home") and isinstance(value, Path) and not value.is_absolute():
                object.__setattr__(self, f.name, home / value)

    def check(self) -> None:
        for lo, hi in (("min_seconds", "max_seconds"), ("min_tempo", "max_tempo"), ("min_temperature", "max_temperature")):
            if getattr(self, lo) > getattr(self, hi):
                raise SettingsError(f"{lo.upper()} ({getattr(self, lo)}) is above {hi.upper()} ({getattr(self, hi)})")

    def require(self, name: str) -> None:
        """Stop with a message naming the setting when a required one is empty."""
        if not getattr(self, name):
            key = next(f.metadata["env"] for f in fields(self) if f.name == name)
            raise SettingsError(f"{key} is not set (put it in .env or the environment; see .env.example)")

    def engine_only(self) -> Settings:
        """Only the engine's keys (what a worker process receives), even when called on a subclass."""
        return Settings(**{f.name: getattr(self, f.name) for f in fields(Settings)})


def _convert(f: Field, raw: str, key: str) -> Any:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if "convert" in f.metadata:
            value = f.metadata["convert"](raw)
        elif kind == "Path":
            return Path(raw).expanduser()
        elif kind == "int":
            value = int(raw)
        elif kind == "float":
            value = float(raw)
        else:
            value = raw.upper() if key == "CHORUS_LOG_LEVEL" else raw
    except ValueError as exc:
        what = "comma-separated list of numeric IDs" if "frozenset" in kind else kind
        raise SettingsError(f"{key} must be a {what}, got {raw!r}") from exc
    if "min" in f.metadata and value < f.metadata["min"]:
        raise SettingsError(f"{key} must be at least {f.metadata['min']}, got {raw!r}")
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        raise SettingsError(f"{key} must be one of {', '.join(f.metadata['choices'])}, got {raw!r}")
    return value
