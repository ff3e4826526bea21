"""Synthesis: a MIDI file (bytes) played through FluidSynth into 16-bit stereo PCM.

`Renderer` loads the General MIDI SoundFont once per process (loading FluidR3_GM takes
longer than rendering a clip) and drives FluidSynth from the MIDI events itself: messages
merged across tracks in time order, their times converted to seconds (tempo changes
included), and exactly the frames between two events rendered in one call. Every song gets
a fresh synthesizer sharing the loaded SoundFont, so the same MIDI bytes always give the
same samples, whatever was rendered before. The SoundFont path comes from the settings
(`engine.settings.Settings.soundfont`).

Encoding and loudness live in `engine.media.encode`, reading a clip back in `engine.media.probe`; `FORMATS`
and `probe` are re-exported here for existing callers. Rendering blocks for up to a few
seconds: call it off the event loop.
"""
from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import threading
import time
from pathlib import Path
from typing import Any

import mido
import numpy as np

from engine.errors import RenderError, Stopped
from engine.media.encode import FORMATS
from engine.media.probe import AudioInfo, duration_s, probe

__all__ = ["FORMATS", "AudioInfo", "RenderError", "Renderer", "duration_s", "get_renderer", "probe"]

log = logging.getLogger(__name__)

_FLUID_BUFSIZE = 64  # FluidSynth renders in blocks of 64 frames
# The synth's effects, set explicitly rather than left to the FluidSynth build's defaults. One
# shared reverb (a mid-sized room) that each part sends to with CC91. The chorus is turned well
# down: FluidR3's jazz guitar carries its own chorus send, which CC93 cannot lower, and at
# FluidSynth's default level (2.0) its chorus outweighed the dry sound (L/R correlation -0.1,
# -3.4 dB summed to mono); at 0.3 the lead keeps a correlation of ~0.95.
_EFFECTS = {"synth.reverb.active": 1, "synth.reverb.room-size": 0.6, "synth.reverb.damp": 0.4,
            "synth.reverb.width": 0.8, "synth.reverb.level": 0.8,
            "synth.chorus.active": 1, "synth.chorus.level": 0.3}
_MIDI_CHANNELS = 16
_DRUM_CHANNEL = 9  # General MIDI's channel 10
# FluidSynth log levels (fluid_log_level) and where their messages go.
_FLUID_LOG_LEVELS = {0: logging.ERROR, 1: logging.ERROR, 2: logging.DEBUG, 3: logging.DEBUG,
                     4: logging.DEBUG}


class Renderer:
    """Renders MIDI with FluidSynth, the SoundFont loaded once and kept for the process.

    Each song is played by a fresh synthesizer that shares the loaded SoundFont (creating
    one takes ~2 ms, loading FluidR3_GM ~0.3-1 s), so nothing of one song (programs,
    controllers, sounding notes, reverb and chorus state, voice amplitudes) reaches the next,
    and the same MIDI bytes always give the same samples. A plain `system_reset` between
    songs on one synthesizer leaves some of that state behind: renders of one song then
    differ by up to ~1% of full scale depending on what was played before.

    Args:
        soundfont: path of a General MIDI SoundFont (.sf2).
        sample_rate: output rate in Hz.
        gain: FluidSynth master gain (0-10; 0.5 leaves headroom for four parts).
        tail_s: seconds rendered after the last MIDI event, so notes and reverb ring out.
        max_s: longest MIDI (seconds, tail excluded) this renderer accepts.

    Raises:
        RenderError: a setting is out of range (the SoundFont is only checked on first render).

    The SoundFont is loaded on the first `render`. Renders are serialised by a lock, so one
    renderer may be shared by the threads of a worker.
    """

    def __init__(self, soundfont: Path | str, sample_rate: int = 44100,
                 gain: float = 0.5, tail_s: float = 2.0, max_s: float = 600.0, threads: int = 1) -> None:
        if not 8000 <= sample_rate <= 192000:
            raise RenderError(f"sample rate {sample_rate} Hz is outside 8000-192000 Hz")
        if not 0.0 < gain <= 10.0:
            raise RenderError(f"gain {gain} is outside (0, 10]")
        if not 0.0 <= tail_s <= 30.0:
            raise RenderError(f"tail {tail_s} s is outside 0-30 s")
        if not max_s > 0:
            raise RenderError(f"max length {max_s} s must be positive")
        self.soundfont = Path(soundfont)
        self.sample_rate = int(sample_rate)
        self.gain = float(gain)
        self.tail_s = float(tail_s)
        self.max_s = float(max_s)
        self.threads = max(1, int(threads))  # synths of one song (`_groups`) rendering at once
        self._lock = threading.Lock()
        self._fluidsynth: Any = None  # the pyfluidsynth module, imported on first render
        self._lib: Any = None  # its ctypes handle on libfluidsynth
        self._holder: Any = None  # fluidsynth.Synth that loaded (and owns) the SoundFont
        self._sfont: int | None = None  # fluid_sfont_t* of the loaded SoundFont

    def render(self, midi: bytes, stop: threading.Event | None = None) -> np.ndarray:
        """Render a standard MIDI file to 16-bit stereo PCM.

        Args:
            midi: the bytes of a type 0 or type 1 MIDI file.
            stop: once set, the render is given up (checked between MIDI events).

        Returns:
            (frames, 2) int16 at `sample_rate`; frames = round((MIDI length + tail_s) * rate).
            The same bytes give the same samples, whatever was rendered before.

        Raises:
            RenderError: FluidSynth or the SoundFont is missing, or the MIDI is unreadable or
                longer than `max_s`.
            Stopped: ``stop`` was set.
        """
        events, length_s = self._events(midi)
        groups = _groups(events)
        with self._lock:
            self._load()
            started = time.perf_counter()
            audio = self._play_groups(groups, length_s, stop)
        log.debug("rendered %.2f s of audio in %.3f s (%d synths)", audio.shape[0] / self.sample_rate,
                  time.perf_counter() - started, len(groups))
        return _to_int16(audio)

    def preload(self) -> None:
        """Start loading pyfluidsynth and the SoundFont on a background thread and return at once.

        FluidSynth leaves the GIL while it reads the SoundFont, so a cold process loads it while
        it imports torch and samples. A failure is left for `render` to raise again.
        """
        def load() -> None:
            with self._lock:
                try:
                    self._load()
                except RenderError as exc:
                    log.debug("SoundFont preload failed (render will say why): %s", exc)

        threading.Thread(target=load, name="soundfont-preload", daemon=True).start()

    def close(self) -> None:
        """Free the SoundFont (~150 MB for FluidR3_GM); a later render loads it again."""
        with self._lock:
            if self._holder is not None:
                self._holder.delete()
                self._holder = self._sfont = None

    # -- internals

    def _events(self, midi: bytes) -> tuple[list[tuple[float, mido.Message]], float]:
        """Parse the MIDI into (seconds since start, channel message) with all tracks merged,
        and its length in seconds (trailing meta events such as end_of_track included)."""
        try:
            mid = mido.MidiFile(file=io.BytesIO(midi))
            events: list[tuple[float, mido.Message]] = []
            now_s = 0.0
            for msg in mid:  # merged tracks; msg.time is the delta in seconds, tempo applied
                now_s += msg.time
                if not msg.is_meta:
                    events.append((now_s, msg))
        except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise RenderError(f"MIDI could not be read: {exc}") from exc
        if now_s > self.max_s:
            raise RenderError(f"MIDI is {now_s:.1f} s long; the renderer plays at most {self.max_s:.0f} s")
        return events, now_s

    def _load(self) -> None:
        """Import pyfluidsynth and load the SoundFont into a holder synth, once."""
        if self._holder is not None:
            return
        if not self.soundfont.is_file():
            raise RenderError(f"SoundFont not found: {self.soundfont} (set CHORUS_SOUNDFONT)")
        try:
            # pyfluidsynth prints where it found the library when CI is set: keep stdout clean
            # (chorus compose --json prints one JSON object there).
            with contextlib.redirect_stdout(io.StringIO()):
                import fluidsynth
        except (ImportError, OSError) as exc:
            raise RenderError(f"FluidSynth library not available: {exc} "
                              "(install fluidsynth and pyfluidsynth)") from exc
        lib = fluidsynth._fl
        _declare(lib)
        started = time.perf_counter()
        holder = fluidsynth.Synth(gain=self.gain, samplerate=self.sample_rate, channels=_MIDI_CHANNELS)
        sfid = holder.sfload(str(self.soundfont))
        sfont = lib.fluid_synth_get_sfont_by_id(holder.synth, sfid) if sfid >= 0 else None
        if not sfont:
            holder.delete()
            raise RenderError(f"SoundFont could not be loaded: {self.soundfont}")
        self._fluidsynth, self._lib, self._holder, self._sfont = fluidsynth, lib, holder, sfont
        log.info("loaded SoundFont %s in %.2f s", self.soundfont, time.perf_counter() - started)

    def _play_groups(self, groups: list[list[tuple[float, mido.Message]]], length_s: float,
                     stop: threading.Event | None) -> np.ndarray:
        """Play each group of events on a synth of its own, ``threads`` at once, and add them up in
        group order: the same samples however many threads there are."""
        synths: list[Any] = []
        try:
            for _ in groups:
                synths.append(self._new_synth())
        except BaseException:
            for synth in synths:
                self._free_synth(synth)
            raise
        outs: list[np.ndarray | None] = [None] * len(groups)
        failed: list[BaseException] = []

        def play(i: int) -> None:
            try:
                outs[i] = self._play(synths[i], groups[i], length_s, stop)
            except BaseException as exc:  # raised again by the caller's thread
                failed.append(exc)

        try:
            if self.threads > 1 and len(groups) > 1:
                helpers = [threading.Thread(target=play, args=(i,), name=f"synth-{i}", daemon=True)
                           for i in range(1, len(groups))]
                for t in helpers:
                    t.start()
                play(0)
                for t in helpers:
                    t.join()
            else:
                for i in range(len(groups)):
                    if not failed:
                        play(i)
        finally:
            for synth in synths:
                self._free_synth(synth)
        if failed:
            raise failed[0]
        audio = outs[0]
        for out in outs[1:]:
            audio += out
        return audio

    def _new_synth(self) -> Any:
        """A fresh synthesizer (GM defaults on every channel) using the loaded SoundFont."""
        # FluidSynth's own threads (synth.cpu-cores > 1) would mix voices in parallel, and then one
        # MIDI does not always render alike (under load, thousands of LSB apart): a song is split
        # into synths of its own instead (`_groups`)
        synth = self._fluidsynth.Synth(gain=self.gain, samplerate=self.sample_rate,
                                       channels=_MIDI_CHANNELS, **{"synth.cpu-cores": 1, **_EFFECTS})
        if self._lib.fluid_synth_add_sfont(synth.synth, self._sfont) < 0:
            synth.delete()
            raise RenderError(f"FluidSynth refused the loaded SoundFont {self.soundfont}")
        synth.system_reset()  # programs, banks (drums on channel 10) and controllers to GM defaults
        return synth

    def _free_synth(self, synth: Any) -> None:
        """Stop the synth's voices, hand the SoundFont back (it stays loaded), delete it."""
        synth.system_reset()
        _write(self._lib, synth, np.empty((_FLUID_BUFSIZE, 2), np.float32), 0, _FLUID_BUFSIZE)
        _fluid_log_muted.on = True  # "no preset found" on every channel once the SoundFont is gone
        try:
            self._lib.fluid_synth_remove_sfont(synth.synth, self._sfont)
        finally:
            _fluid_log_muted.on = False
        synth.delete()

    def _play(self, synth: Any, events: list[tuple[float, mido.Message]], length_s: float,
              stop: threading.Event | None = None) -> np.ndarray:
        """Send the events to the synth at their times; returns (frames, 2) float32."""
        rate = self.sample_rate
        total = round((length_s + self.tail_s) * rate)
        out = np.zeros((total, 2), np.float32)
        done = 0
        ignored: dict[str, int] = {}
        for at_s, msg in events:
            if stop is not None and stop.is_set():
                raise Stopped("the render was stopped")
            due = min(round(at_s * rate), total)
            _write(self._lib, synth, out, done, due - done)
            done = max(done, due)
            if not _send(synth, msg):
                ignored[msg.type] = ignored.get(msg.type, 0) + 1
        _write(self._lib, synth, out, done, total - done)
        if ignored:
            log.debug("MIDI messages not sent to the synth: %s", ignored)
        return out


def _groups(events: list[tuple[float, mido.Message]]) -> list[list[tuple[float, mido.Message]]]:
    """The song's events in the groups that render on synths of their own: the drums (channel 10)
    apart from the other channels when both are there, else all in one.

    The drums' ringing cymbals take as many voices as the rest of a jazz band together (a 30 s
    clip: 0.33 s to render the drums alone, 0.19 s the other three parts), so two synths render
    a song in about the drums' time on two cores. A channel's voices never meet another channel's
    except in the sum (reverb and chorus are linear), but FluidSynth's voice allocation does, so
    the split itself moves samples a little; it depends on the MIDI alone, so the same MIDI
    always renders to the same samples, on one thread or two.
    """
    drums = [e for e in events if e[1].channel == _DRUM_CHANNEL]
    if not drums or len(drums) == len(events):
        return [events]
    return [[e for e in events if e[1].channel != _DRUM_CHANNEL], drums]


def _send(synth: Any, msg: mido.Message) -> bool:
    """Send one channel message to the synth; False when its type is not rendered."""
    kind = msg.type
    if kind == "note_on":
        synth.noteon(msg.channel, msg.note, msg.velocity)  # velocity 0 is a note-off
    elif kind == "note_off":
        synth.noteoff(msg.channel, msg.note)
    elif kind == "program_change":
        synth.program_change(msg.channel, msg.program)
    elif kind == "control_change":
        synth.cc(msg.channel, msg.control, msg.value)
    elif kind == "pitchwheel":
        synth.pitch_bend(msg.channel, msg.pitch)  # -8192..8191
    else:
        return False
    return True


def _write(lib: Any, synth: Any, out: np.ndarray, start: int, frames: int) -> None:
    """Render `frames` frames into out[start:start + frames] ((N, 2) float32, C order).

    Float output rather than pyfluidsynth's `get_samples`: that one writes 16-bit samples
    with FluidSynth's dither, whose position runs on from call to call, so two renders of
    one song would differ by a least significant bit here and there.
    """
    if frames <= 0:
        return
    ptr = out.ctypes.data + start * out.strides[0]
    lib.fluid_synth_write_float(synth.synth, frames, ptr, 0, 2, ptr, 1, 2)


_log_callback: Any = None  # keeps the ctypes callback alive while FluidSynth holds it
_log_callback_lock = threading.Lock()
_fluid_log_muted = threading.local()  # .on: drop FluidSynth messages from this thread


def _declare(lib: Any) -> None:
    """Declare the libfluidsynth functions used here that pyfluidsynth does not wrap, and
    route FluidSynth's own messages (printed to stderr by default) into this module's log."""
    global _log_callback
    proto = [
        ("fluid_synth_write_float", ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                                   ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                                   ctypes.c_int, ctypes.c_int]),
        ("fluid_synth_get_sfont_by_id", ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]),
        ("fluid_synth_add_sfont", ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
        ("fluid_synth_remove_sfont", ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
    ]
    try:
        for name, restype, argtypes in proto:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
    except AttributeError as exc:
        raise RenderError(f"libfluidsynth is too old (2.x needed): {exc}") from exc
    with _log_callback_lock:
        if _log_callback is None and hasattr(lib, "fluid_set_log_function"):
            callback_type = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
            lib.fluid_set_log_function.argtypes = [ctypes.c_int, callback_type, ctypes.c_void_p]
            _log_callback = callback_type(_fluid_log)
            for level in _FLUID_LOG_LEVELS:
                lib.fluid_set_log_function(level, _log_callback, None)


def _fluid_log(level: int, message: bytes | None, _data: Any) -> None:
    """FluidSynth log handler: errors to ERROR, warnings and the rest to DEBUG."""
    if getattr(_fluid_log_muted, "on", False):
        return
    text = (message or b"").decode(errors="replace")
    log.log(_FLUID_LOG_LEVELS.get(level, logging.DEBUG), "fluidsynth: %s", text)


def _to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples (full scale 1.0) to int16; a song that would clip is scaled down whole."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    scale = 32767.0 if peak <= 1.0 else 32767.0 / peak
    if peak > 1.0:
        log.debug("render peaked at %.2f of full scale; scaled down to fit 16 bits", peak)
    return np.rint(audio * scale).astype(np.int16)


_renderers: dict[tuple[str, int], Renderer] = {}
_renderers_lock = threading.Lock()


def get_renderer(soundfont: Path | str, sample_rate: int = 44100, threads: int = 1) -> Renderer:
    """The process-wide Renderer for (soundfont, sample_rate, threads); created on first use."""
    key = (str(Path(soundfont).expanduser().resolve()), int(sample_rate), int(threads))
    with _renderers_lock:
        if key not in _renderers:
            _renderers[key] = Renderer(soundfont, sample_rate, threads=threads)
        return _renderers[key]
