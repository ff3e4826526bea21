"""Chorus engine: music theory, models, the band, audio and pictures, file formats, composing.

The entry points: `ComposeRequest` (what to compose), `Composer` (composes it) and
`ComposeResult` (the clip). The engine never imports the bot or the training code
(see ../shared/STYLE.md); its packages import one way (tests/imports.py).
"""
import lazy_loader as lazy

from engine.version import __version__

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "compose": ["ComposeRequest", "ComposeResult", "Composer", "Pipeline"],
    "errors": ["EngineError"],
    "settings": ["Settings"],
})
__all__ += ["__version__"]
