"""Era and player conditioning of the melody model: the vocabularies and the request's names.

The era vocabulary is the WJazzD style labels (the same list the harmony model uses,
`engine.models.harmony.ERAS`, repeated here so that the bot, which never imports torch, can list it).
The player vocabulary is stored in each conditioned checkpoint's meta (``meta["conditioning"]``):
the performers with enough training material. Id 0 of each is "unconditioned".
"""
from __future__ import annotations

from typing import Any

from engine.errors import EngineError

# WJazzD style labels; index = era id of the melody model (0: none). Keep in step with engine.models.harmony.ERAS.
ERAS: tuple[str, ...] = ("", "TRADITIONAL", "SWING", "BEBOP", "COOL", "HARDBOP", "POSTBOP", "FUSION", "FREE")
# The eras a request may name (lower case): the labels with enough solos to learn from.
ERA_CHOICES: tuple[str, ...] = ("swing", "bebop", "cool", "hardbop", "postbop", "fusion")


def check_era(era: str | None) -> str | None:
    """The era as a request carries it (lower case), or None.

    Raises:
        EngineError: not one of `ERA_CHOICES`; one line listing them.
    """
    if era is None or era == "":
        return None
    name = str(era).strip().lower()
    if name not in ERA_CHOICES:
        raise EngineError(f"era {era!r} is not one of: {', '.join(ERA_CHOICES)}")
    return name


def era_label(era: str | None) -> str:
    """The WJazzD label of a request's era (``"bebop"`` -> ``"BEBOP"``), ``""`` for none."""
    return era.upper() if era else ""


def cond_ids(meta: dict[str, Any], era: str | None = None, player: str | None = None) -> tuple[int, int]:
    """The (era id, player id) of a checkpoint for a request; (0, 0) when it is not conditioned.

    ``era`` is a request era (``"bebop"``) or a WJazzD label; ``player`` a performer name. A name
    the checkpoint does not know gives id 0 (the unconditioned average).
    """
    cond = meta.get("conditioning") or {}
    eras, players = list(cond.get("eras", [])), list(cond.get("players", []))
    label = era_label(era) if era else ""
    era_id = eras.index(label) if label and label in eras else 0
    player_id = players.index(player) if player and player in players else 0
    return era_id, player_id
