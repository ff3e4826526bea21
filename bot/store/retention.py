"""Retention: what the bot keeps after a job is finished, and for how long.

A delivered (or failed) job keeps its clip folder for ``keep_clips_days``, its uploaded seed MIDI
for ``keep_seeds_days`` and its interaction token for ``keep_tokens_days`` (settings, see
``.env.example``). `prune` removes what is older; the job row itself stays, as the record of what
was asked and by whom. Folders are removed off the event loop.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

from bot.settings import BotSettings
from bot.store.db import Store

log = logging.getLogger(__name__)
DAY_S = 24 * 3600


async def prune(store: Store, data_dir: Path, settings: BotSettings, now: float | None = None) -> dict[str, int]:
    """Remove the clips, seeds and tokens of finished jobs past their retention.

    Returns:
        How many clip folders, seeds and tokens were removed.
    """
    now = time.time() if now is None else now
    clips = 0
    while jobs := await store.prunable(now - settings.keep_clips_days * DAY_S):
        for job in jobs:
            folder = Path(data_dir) / "jobs" / job.id
            if folder.exists():
                await asyncio.to_thread(shutil.rmtree, folder, True)
                clips += 1
            await store.update_job(job.id, pruned_at=now)
    seeds = await store.forget_seeds(now - settings.keep_seeds_days * DAY_S)
    tokens = await store.forget_tokens(now - settings.keep_tokens_days * DAY_S)
    counts = {"clips": clips, "seeds": seeds, "tokens": tokens}
    if any(counts.values()):
        log.info("retention: removed %s", counts)
    return counts
