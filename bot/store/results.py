"""The shape of a finished job's result (the clip's summary), checked before the bot uses it.

A result comes back from a worker process, from Redis through Celery, or from the database after a
restart; any of them may hold something this version cannot show (a number as a string, a missing
file path). `check_result` says so in one line, so the job fails cleanly instead of breaking the
code that builds its message. The table `SCHEMA` is the contract (engine/compose/composer.py writes the
summary, `bot.queues.policy.save_clip` adds ``timings`` and ``files``).
"""
from __future__ import annotations

from typing import Any

from bot.errors import BotError

NUMBER = (int, float)
# key -> (accepted types, required); bool is refused where a number is expected
SCHEMA: dict[str, tuple[tuple[type, ...], bool]] = {
    "style": ((str,), False),
    "checkpoint": ((str,), False),
    "checkpoint_hash": ((str,), False),
    "tempo": (NUMBER, True),
    "meter": ((str,), False),
    "key": ((str,), False),
    "form": ((str, type(None)), False),
    "era": ((str, type(None)), False),
    "player": ((str, type(None)), False),
    "changes": ((str,), False),
    "bars": ((int,), True),
    "seed": ((int,), True),
    "temperature": ((int, float, type(None)), False),
    "seconds": (NUMBER, True),
    "continuation_starts_bar": ((int, type(None)), False),
    "parts": ((list,), False),
    "chorus_bars": ((int, type(None)), False),
    "continues": ((dict, type(None)), False),
    "timings": ((dict,), False),
    "files": ((dict,), True),
}
FILE_KINDS = ("audio", "midi", "picture", "written")  # written: the notes for the lead sheet (`bot.service.sheet`)


class ResultError(BotError):
    """A stored or returned result does not have the shape the bot needs."""


def check_result(result: Any) -> dict[str, Any]:
    """``result`` itself when it has the shape of `SCHEMA`.

    Raises:
        ResultError: the first problem found, named.
    """
    if not isinstance(result, dict):
        raise ResultError(f"the result is a {type(result).__name__}, not a mapping")
    for key, (types, required) in SCHEMA.items():
        if key not in result:
            if required:
                raise ResultError(f"the result has no {key!r}")
            continue
        value = result[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ResultError(f"the result's {key!r} is {value!r}, not {' or '.join(t.__name__ for t in types)}")
    files = result["files"]
    for kind in ("audio", "midi"):
        if not isinstance(files.get(kind), str) or not files[kind]:
            raise ResultError(f"the result names no {kind} file")
    for kind, path in files.items():
        if kind not in FILE_KINDS or not isinstance(path, str):
            raise ResultError(f"the result's files hold {kind!r}: {path!r}")
    for name, value in (result.get("timings") or {}).items():
        if isinstance(value, bool) or not isinstance(value, NUMBER):
            raise ResultError(f"the result's timing {name!r} is {value!r}, not a number")
    return result
