"""The band: styles, the score, the arrangers of the lead, comping, bass and drums, and the
chorale's voice leading.

Imports `engine.music` only; never the models, media or formats.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "styles": ["STYLES", "Style", "StyleError", "get_style"],
    "score": ["Part", "Score", "ScoreNote", "chord_at"],
    "arrange": ["PARTS", "Arranger", "swing_ratio"],
    "chorale": ["Chorale", "ChoraleError", "check"],
    "voicelead": ["voice_chorale"],
})
