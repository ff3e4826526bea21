"""Finishing a sampled clip, in two stages that can run on different threads (`engine.compose.pipeline`).

`render_stage`: decode and arrange the tokens, write the MIDI, start drawing the piano roll (its
own thread) and, for a streamed clip, start ffmpeg; then render with FluidSynth (the renderer is
shared and serialised by its lock). `encode_stage`: measure the loudness, stream the PCM into
ffmpeg (or, unstreamed, encode the whole PCM at once with `engine.media.encode.encode`, the reference
path), wait for the picture and build the `ComposeResult`. Both paths give the same bytes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.band.arrange import PARTS
from engine.band.score import Score
from engine.compose.plan import Plan
from engine.compose.request import ComposeRequest
from engine.compose.result import ComposeResult
from engine.formats.midi import write_midi
from engine.music.written import Written
from engine.settings import Settings

if TYPE_CHECKING:
    from engine.media.stream import StreamEncoder


# Decodes a sampled plan and arranges the band (`engine.compose.composer.Composer.realise`):
# (score, key name, changes text, bar where a continuation starts, the clip as written).
Realise = Callable[[Plan, ComposeRequest], tuple[Score, str, str, int | None, Written]]


@dataclass
class Rendered:
    """A clip between the two stages: rendered, waiting to be measured and encoded."""

    plan: Plan
    score: Score
    key_name: str
    changes_text: str
    cont_bar: int | None
    written: Written
    midi: bytes
    pcm: np.ndarray  # (frames, 2) int16
    band: np.ndarray | None  # (frames', 2) int16: the whole band, when the clip leaves parts out
    sample_rate: int
    encoder: StreamEncoder | None  # None: encoded unstreamed
    painter: threading.Thread
    drawn: dict[str, Any]
    started: float  # perf_counter when finishing began
    clock: list[float] = field(default_factory=list)  # [perf_counter at the last lap]

    def lap(self, name: str) -> None:
        """Record the time since the last lap as stage ``name``."""
        now = time.perf_counter()
        self.plan.timings[name] = round(now - self.clock[0], 4)
        self.clock[0] = now


def render_stage(realise: Realise, settings: Settings, plan: Plan, stream: bool = True,
                 stop: threading.Event | None = None) -> Rendered:
    """Decode, arrange, write the MIDI and render it (the picture is drawn meanwhile).

    Raises:
        EngineError: a render failure (ffmpeg, started early, is stopped again); `Stopped` once
            ``stop`` is set (checked between MIDI events).
    """
    from engine.media.render import get_renderer

    started = time.perf_counter()
    clock = [started]

    def lap(name: str) -> None:
        now = time.perf_counter()
        plan.timings[name] = round(now - clock[0], 4)
        clock[0] = now

    req = plan.req
    score, key_name, changes_text, cont_bar, written = realise(plan, req)
    lap("decode_arrange")
    plan.say("rendering")
    midi = write_midi(score)
    lap("midi")
    renderer = get_renderer(settings.soundfont, settings.sample_rate, settings.synth_threads)
    encoder = None
    if stream:
        from engine.media.stream import StreamEncoder

        encoder = StreamEncoder(renderer.sample_rate, req.audio_format)  # ffmpeg starts up while we render
    # The picture is drawn while FluidSynth and ffmpeg work (both leave the GIL): the stages
    # overlap, so "total" is the wall time, less than the sum of the stages.
    painter, drawn = _start_painter(score)
    try:
        pcm = renderer.render(midi, stop=stop)
        band = None
        if req.parts != frozenset(PARTS):
            # Some parts left out: the clip takes the gain the whole band's mix gets, so what is
            # left is exactly those parts of the full clip (the parts are arranged independently).
            full, *_ = realise(plan, replace(req, parts=frozenset(PARTS)))
            if len(full.parts) > len(score.parts):
                band = renderer.render(write_midi(full), stop=stop)
    except BaseException:
        if encoder is not None:
            encoder.abort()
        raise
    lap("render")
    return Rendered(plan, score, key_name, changes_text, cont_bar, written, midi, pcm, band, renderer.sample_rate,
                    encoder, painter, drawn, started, clock)


def encode_stage(r: Rendered, stop: threading.Event | None = None) -> ComposeResult:
    """Measure the loudness, encode (streamed into the ffmpeg `render_stage` started, or at once),
    wait for the picture and build the result.

    Raises:
        EngineError: ffmpeg failed; the picture could not be drawn.
    """
    from engine.media.encode import encode, master

    plan, req = r.plan, r.plan.req
    if r.encoder is None:
        audio = encode(r.pcm, r.sample_rate, req.audio_format, band=r.band)
    else:
        try:
            mastered = master(r.pcm, r.sample_rate, band=r.band)
        except BaseException:
            r.encoder.abort()
            raise
        audio = r.encoder.feed(mastered, stop=stop)
    r.lap("encode")
    r.painter.join()
    if "error" in r.drawn:
        raise r.drawn["error"]
    picture, plan.timings["picture"] = r.drawn["png"]
    timings = plan.timings
    # this job's own wall time: preparing, its (possibly shared) sampling batch, and finishing
    timings["total"] = round(timings["prepare"] + timings.get("sample", 0.0) + time.perf_counter() - r.started, 4)
    summary = {
        "style": req.style,
        "checkpoint": plan.ck.name,
        "checkpoint_hash": plan.ck.content_hash[:12],
        "tempo": round(plan.tempo, 2),
        "meter": f"{plan.meter[0]}/{plan.meter[1]}",
        "key": r.key_name,
        "form": plan.song.form if plan.song else None,
        "era": plan.era,
        "player": plan.player,
        "changes": r.changes_text,
        "bars": len(r.score.bars),
        "seed": plan.seed,
        "temperature": plan.sreq.temperature,
        "seconds": round(len(r.pcm) / r.sample_rate, 3),
        "continuation_starts_bar": r.cont_bar,
        "parts": [p.name for p in r.score.parts],
        "chorus_bars": len(plan.song.chorus) if plan.song and (plan.song.form or plan.continued) else None,
        "continues": _continues(plan, r.key_name),
    }
    return ComposeResult(audio, req.audio_format, r.midi, picture, summary, timings, r.score,
                         written=r.written.to_json())


def _continues(plan: Plan, key_name: str) -> dict[str, Any] | None:
    """What a continuation went on with: the form (None: the seed's own changes or none found),
    the key, and the bar of the form its first new bar is (1-based)."""
    c = plan.continued
    if c is None:
        return None
    form = c.song.form or (f"{len(c.song.chorus)}-bar tune" if c.song.chorus else None)
    return {"form": form, "key": key_name, "bar": c.bar + 1}


def _start_painter(score: Score) -> tuple[threading.Thread, dict[str, Any]]:
    """Draw the piano roll on its own thread; the dict gets ``png`` (bytes, seconds) or ``error``."""
    from engine.media.picture import piano_roll

    drawn: dict[str, Any] = {}

    def paint() -> None:
        try:
            drawn["png"] = _timed(piano_roll, score)
        except BaseException as exc:  # handed to encode_stage, which raises it in the caller's thread
            drawn["error"] = exc

    painter = threading.Thread(target=paint, name="piano-roll", daemon=True)
    painter.start()
    return painter, drawn


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - t, 4)
