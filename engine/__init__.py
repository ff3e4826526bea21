"""Chorus engine: chords, grammar, model, sampling, arrangement and rendering.

The engine never imports the bot or the training code (see ../shared/STYLE.md).
"""
from __future__ import annotations

__version__ = "0.1.0"
