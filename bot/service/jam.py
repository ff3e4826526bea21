"""What the buttons under a clip ask for: the next request, built from a finished job.

Plain functions of a `bot.store.db.Job` (no Discord here): `bot.buttons` calls them and submits the
request like /compose does, charged to whoever pressed.

- Another take: the same request with a new seed.
- Continue: the next ``CONTINUE_SECONDS``, seeded with the clip's own MIDI, at its tempo, with the
  same checkpoint and changes.
- Variation: the same request with the clip's realised changes, form and key, and a new seed.
"""
from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

from bot.errors import ServiceError
from bot.store.db import Job
from engine.compose.request import ComposeRequest, RequestError, parse_changes

CONTINUE_SECONDS = 30.0
PRUNED = "this clip's files were removed by the retention policy, so it cannot be continued; try Another take"


def _rebuilt(job: Job, **changed: Any) -> ComposeRequest:
    """The job's request with some payload keys changed (parsed again, so changes are checked)."""
    try:
        return ComposeRequest.from_payload({**job.compose_request().to_payload(), **changed})
    except RequestError as exc:
        raise ServiceError(f"this clip's request cannot be made again: {exc}") from exc


def realised_changes(text: str | None) -> str | None:
    """The clip's changes as `engine.compose.request.parse_changes` reads them: the summary writes a bar
    that repeats the previous one as ``%``; None when there are none or they do not parse."""
    if not text:
        return None
    bars: list[str] = []
    for bar in (b.strip() for b in text.split("|")):
        if bar == "%" and bars:
            bars.append(bars[-1])
        elif bar and bar != "%":
            bars.append(bar)
    joined = " | ".join(bars)
    try:
        parse_changes(joined)
    except RequestError:
        return None
    return joined or None


def another_take(job: Job) -> ComposeRequest:
    return _rebuilt(job, seed=None)


def variation(job: Job) -> ComposeRequest:
    """Same changes and form (as realised in the clip), a new melody."""
    result = job.result or {}
    changed: dict[str, Any] = {"seed": None}
    if changes := realised_changes(result.get("changes")):
        changed["changes"] = changes
    if result.get("form"):
        changed["form"] = result["form"]
    if result.get("key"):
        changed["key"] = result["key"]
    return _rebuilt(job, **changed)


async def continuation(job: Job) -> ComposeRequest:
    """The next 30 s of the clip, seeded with its MIDI file (read off the event loop).

    Raises:
        ServiceError: the clip's files were pruned, or it has no MIDI file.
    """
    result = job.result or {}
    path = (result.get("files") or {}).get("midi")
    if job.pruned_at is not None or not path:
        raise ServiceError(PRUNED)
    try:
        data = await asyncio.to_thread(Path(path).read_bytes)
    except OSError as exc:
        raise ServiceError(PRUNED) from exc
    # the next chorus over the clip's own changes: one chorus of them (a clip's changes run on past it),
    # its form and key; the engine finds where in them the clip stopped
    chorus = chorus_of(result)
    return _rebuilt(job, seed=None, seconds=CONTINUE_SECONDS, tempo=float(result.get("tempo") or 0) or None,
                    seed_midi=base64.b64encode(data).decode("ascii"), changes=chorus,
                    form=result.get("form") if chorus else None, key=result.get("key") if chorus else None)


def chorus_of(result: dict[str, Any]) -> str | None:
    """One chorus of a clip's changes (its first ``chorus_bars``), or None when the clip does not
    say how long its chorus is (the continuation then writes its own changes in the clip's key)."""
    bars = result.get("chorus_bars")
    text = realised_changes(result.get("changes"))
    if not text or not isinstance(bars, int) or isinstance(bars, bool) or bars < 1:
        return None
    cells = text.split(" | ")
    return " | ".join(cells[:bars]) if len(cells) >= bars else None
