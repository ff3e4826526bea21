"""Sound and pictures: FluidSynth rendering, loudness and encoding (ffmpeg), streamed encoding,
probing, the piano-roll picture with its chord labels, and the engraved lead sheet (Verovio, cairo).
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "render": ["Renderer", "get_renderer"],
    "encode": ["encode", "master", "integrated_lufs"],
    "stream": ["StreamEncoder"],
    "probe": ["probe", "duration_s"],
    "picture": ["piano_roll"],
    "layout": ["PictureError", "roll_layout"],
    "sheet": ["SheetError", "engrave", "to_png", "to_pdf"],
})
