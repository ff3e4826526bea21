"""The compose service: a `ComposeRequest` in, a `ComposeResult` out.

`Composer` plans the song, samples, and finishes (render, encode, picture); `Pipeline` overlaps
those stages for a worker. The top of the engine: it may import every other engine package.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "request": ["ComposeRequest", "RequestError", "parse_length", "parse_changes"],
    "result": ["ComposeResult"],
    "plan": ["Plan", "Progress"],
    "composer": ["Composer"],
    "pipeline": ["Pipeline"],
    "song": ["SongPlan", "plan_song"],
    "sheet": ["Sheet", "make_sheet", "written_clip"],
})
