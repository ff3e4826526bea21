"""Domain errors of the engine layer. Every engine error derives from `EngineError`."""
from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class ChordError(EngineError, ValueError):
    """A chord label could not be parsed."""


class GrammarError(EngineError, ValueError):
    """A token or token sequence is not part of the grammar."""


class MidiReadError(EngineError):
    """A MIDI file could not be read as a lead sheet."""


class Stopped(EngineError):
    """A job's work was given up on purpose (its batch passed its time limit) before it finished."""


class RenderError(EngineError):
    """Audio could not be rendered, encoded or probed (missing FluidSynth/SoundFont/ffmpeg, bad MIDI)."""


class ConfigError(EngineError, ValueError):
    """A model config (melody or harmony) has a value out of its bounds; the message names it."""
