"""A prepared request: everything decided before sampling, handed from stage to stage."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.band.styles import Style
from engine.compose.request import ComposeRequest
from engine.models.checkpoint import Checkpoint
from engine.music import grammar as g

Progress = Callable[[str], None]  # called with each stage's name ("composing", "rendering", ...)


@dataclass
class Plan:
    """A prepared request: everything decided before sampling."""

    req: ComposeRequest
    ck: Checkpoint
    style: Style
    seed: int
    tempo: float
    meter: tuple[int, int]
    primer_piece: g.QPiece | None
    n_primer: int
    sreq: Any
    song: Any
    say: Progress
    started: float
    timings: dict[str, float]
    tokens: list[str] = field(default_factory=list)
    era: str | None = None  # the era the clip is conditioned on (request or style default)
    player: str | None = None  # the player the melody model is conditioned on (the style's)
    continued: Any = None  # `engine.compose.continuation.Continuation` of a seed, when planned
