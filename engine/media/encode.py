"""Encoding: 16-bit PCM to an OGG Vorbis (default), MP3 or FLAC clip with ffmpeg, after a short
fade-out and loudness normalisation of the whole mix (EBU R128 integrated loudness to
`TARGET_LUFS`, sample peaks limited to `SAMPLE_CEILING_DBFS` so that the true peak after encoding
stays under `PEAK_CEILING_DBFS`; ``bench/mix.py`` measures both on the encoded clips).

Encoding blocks for up to a few seconds: call it off the event loop.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.errors import RenderError

log = logging.getLogger(__name__)

FORMATS = ("ogg", "mp3", "flac")

# Loudness: RMS (full-scale square wave = 0 dBFS) measured over 100 ms blocks, ignoring blocks
# below -70 dBFS and blocks 20 dB below the level of the rest (BS.1770-style gating without
# K-weighting), so silence and fades do not pull the level down. Peaks stay under -1 dBFS,
# the headroom lossy codecs need to avoid inter-sample clipping when decoded.
TARGET_RMS_DBFS = -16.0  # the target of `gated_rms_dbfs` (kept for callers of the old measure)
TARGET_LUFS = -16.0  # integrated loudness (ITU-R BS.1770 / EBU R128) of every clip
PEAK_CEILING_DBFS = -1.0  # true peak (dBTP) of the encoded clip at most
# Sample peaks are limited 1 dB under the true-peak ceiling: between samples and through the
# codec a peak rises by less than that (measured on the encoded clips by bench/mix.py); 4x
# oversampling the limiter's input instead costs ~0.15 s per 30 s clip.
SAMPLE_CEILING_DBFS = PEAK_CEILING_DBFS - 1.0
MAX_GAIN_DB = 40.0  # the most a quiet clip is raised; near-silence is not blown up to noise
FADE_OUT_S = 1.5  # at most a quarter of the clip; starts 0.5 s into the renderer's 2 s tail
FADE_DEPTH_DB = 48.0  # the fade falls evenly in dB (as a ringing chord decays) to this depth, then to 0

# ffmpeg settings per format: container (-f) and codec arguments. Vorbis q4 is ~128 kbit/s and
# MP3 160 kbit/s CBR: a 180 s clip is ~2.9 MB and 3.6 MB, well under Discord's 10 MiB limit.
# FLAC is lossless (~0.85 Mbit/s measured on a 4-part GM render): only clips up to ~90 s fit
# in 10 MiB, so the caller must check the size before offering FLAC for long clips.
_CODECS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ogg": ("ogg", ("-c:a", "libvorbis", "-q:a", "4")),
    "mp3": ("mp3", ("-c:a", "libmp3lame", "-b:a", "160k")),
    "flac": ("flac", ("-c:a", "flac", "-compression_level", "5")),
}
FFMPEG_TIMEOUT_S = 120.0  # a 180 s clip encodes in ~2 s; this only catches a hung ffmpeg


def encode(pcm: np.ndarray, sample_rate: int, fmt: str = "ogg", band: np.ndarray | None = None) -> bytes:
    """Fade out, loudness-normalise and encode 16-bit stereo PCM into an audio file.

    Args:
        pcm: (frames, 2) int16.
        sample_rate: rate of `pcm` in Hz (kept in the output).
        fmt: one of FORMATS: "ogg" (Vorbis q4), "mp3" (160 kbit/s) or "flac".
        band: (frames', 2) int16, the whole band's render when ``pcm`` leaves some parts out: the
            clip then takes the gain (and the limiter's curve) that the whole band's mix gets, so
            each part is exactly as loud as in the full clip. ``None``: ``pcm`` is the whole mix.

    Returns:
        The encoded file's bytes.

    Raises:
        RenderError: unknown format, malformed PCM, or ffmpeg missing or failing.
    """
    codec(fmt)  # an unknown format fails before any work
    check_pcm(pcm, sample_rate)
    audio = pcm.astype(np.float32) / 32768.0
    if band is None:
        audio = normalize_loudness(fade_out(audio, sample_rate), sample_rate)
    else:
        audio = _stem_of(audio, band, sample_rate)
    raw = np.rint(audio * 32767.0).astype("<i2").tobytes()
    ffmpeg = tool("ffmpeg")
    with tempfile.TemporaryDirectory(prefix="chorus-enc-") as tmp:
        # A file rather than a pipe, so the muxer can seek back to write FLAC's STREAMINFO
        # and the MP3 Xing/LAME header (exact duration for players).
        out = Path(tmp) / f"clip.{fmt}"
        run(ffmpeg_command(ffmpeg, fmt, sample_rate, out), raw, FFMPEG_TIMEOUT_S, f"ffmpeg could not encode {fmt}")
        return out.read_bytes()


def ffmpeg_command(ffmpeg: str, fmt: str, sample_rate: int, out: Path) -> list[str]:
    """The ffmpeg command that encodes 16-bit stereo PCM from stdin into ``out`` as ``fmt``."""
    container, codec_args = codec(fmt)
    return [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
            "-f", "s16le", "-ar", str(sample_rate), "-ac", "2", "-i", "pipe:0",
            "-map_metadata", "-1", *codec_args, "-fflags", "+bitexact", "-flags:a", "+bitexact",
            "-f", container, str(out)]


def fade_out(audio: np.ndarray, sample_rate: int, seconds: float = FADE_OUT_S) -> np.ndarray:
    """Fade the end of (frames, 2) float audio to silence over min(seconds, length / 4).

    The gain falls evenly in dB, like a chord ringing out (FADE_DEPTH_DB over the fade, ~5 dB per
    0.15 s), and is shifted to end at exactly 0: no sudden drop while the chord is still loud, as a
    half cosine gives near its end. Returns a new array.
    """
    frames = min(round(seconds * sample_rate), audio.shape[0] // 4)
    out = audio.copy()
    if frames > 0:
        floor = 10 ** (-FADE_DEPTH_DB / 20)
        ramp = (10 ** (np.linspace(0.0, -FADE_DEPTH_DB, frames, dtype=np.float64) / 20) - floor) / (1 - floor)
        out[-frames:] *= ramp.astype(out.dtype)[:, None]
    return out


def gated_rms_dbfs(audio: np.ndarray, sample_rate: int) -> float:
    """Loudness of (frames, 2) float audio in dBFS: RMS over 100 ms blocks, ignoring blocks
    under -70 dBFS and blocks 20 dB quieter than the rest. -inf for silence."""
    block = max(1, sample_rate // 10)
    n = audio.shape[0] // block
    if n == 0:
        ms = np.array([np.mean(np.square(audio, dtype=np.float64))]) if audio.size else np.zeros(1)
    else:
        ms = np.mean(np.square(audio[: n * block], dtype=np.float64).reshape(n, -1), axis=1)
    ms = ms[ms > 10 ** (-70 / 10)]
    if ms.size == 0:
        return float("-inf")
    ms = ms[ms > np.mean(ms) * 10 ** (-20 / 10)]
    return float(10 * np.log10(np.mean(ms)))


def _k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads (b, a) of BS.1770's K-weighting at ``sample_rate``: a +4 dB high shelf
    from ~1.7 kHz and a ~38 Hz high-pass (designed as pyloudnorm does)."""
    w0 = 2 * np.pi * 1681.974450955533 / sample_rate
    big_a, alpha = 10 ** (3.999843853973347 / 40), np.sin(w0) / (2 * 0.7071752369554196)
    cos, root = np.cos(w0), 2 * np.sqrt(big_a) * alpha
    shelf = (np.array([big_a * ((big_a + 1) + (big_a - 1) * cos + root), -2 * big_a * ((big_a - 1) + (big_a + 1) * cos),
                       big_a * ((big_a + 1) + (big_a - 1) * cos - root)]),
             np.array([(big_a + 1) - (big_a - 1) * cos + root, 2 * ((big_a - 1) - (big_a + 1) * cos),
                       (big_a + 1) - (big_a - 1) * cos - root]))
    w0 = 2 * np.pi * 38.13547087602444 / sample_rate
    alpha, cos = np.sin(w0) / (2 * 0.5003270373238773), np.cos(w0)
    high = (np.array([(1 + cos) / 2, -(1 + cos), (1 + cos) / 2]), np.array([1 + alpha, -2 * cos, 1 - alpha]))
    return [shelf, high]


def integrated_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS, EBU R128) of (frames, 2) float audio (full scale 1.0): K-weighted
    power over 400 ms blocks every 100 ms, gated at -70 LUFS and 10 LU under the ungated level.
    -inf for silence."""
    sos = np.array([np.concatenate([b / a[0], a / a[0]]) for b, a in _k_weighting(sample_rate)])
    x = _sosfilt_frames(sos.astype(np.float32), np.asarray(audio, dtype=np.float32))  # both biquads, one pass
    hop = max(1, sample_rate // 10)
    power = np.einsum("ij,ij->i", x, x, dtype=np.float64)  # (frames,) power summed over the two channels
    n = power.shape[0] // hop
    if n < 4:
        blocks = np.array([power.mean()]) if power.size else np.zeros(1)
    else:
        per_hop = power[: n * hop].reshape(n, hop).mean(axis=1)
        blocks = np.convolve(per_hop, np.ones(4) / 4, mode="valid")  # (n - 3,) 400 ms blocks
    blocks = blocks[blocks > 10 ** ((-70 + 0.691) / 10)]
    if blocks.size == 0:
        return float("-inf")
    blocks = blocks[blocks > blocks.mean() * 10 ** (-10 / 10)]
    return float(-0.691 + 10 * np.log10(blocks.mean()))


def normalize_loudness(audio: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS,
                       ceiling_dbfs: float = SAMPLE_CEILING_DBFS) -> np.ndarray:
    """Scale (frames, 2) float audio to `target_lufs` integrated loudness with sample peaks under
    `ceiling_dbfs` (the gain of `loudness_gain`). Silence is returned unchanged."""
    ceiling = 10 ** (ceiling_dbfs / 20)
    out = audio.astype(np.float32) * loudness_gain(audio, sample_rate, target_lufs, ceiling_dbfs)[:, None]
    return np.clip(out, -ceiling, ceiling)


def loudness_gain(audio: np.ndarray, sample_rate: int, target_lufs: float = TARGET_LUFS,
                  ceiling_dbfs: float = SAMPLE_CEILING_DBFS) -> np.ndarray:
    """The gain per frame, (frames,) float32, that brings (frames, 2) float audio to `target_lufs`
    integrated loudness with sample peaks under `ceiling_dbfs`.

    Gain is raised by at most MAX_GAIN_DB; peaks above the ceiling are pulled down by a
    look-around limiter (gain per ~6 ms block, held over ±45 ms, interpolated between blocks).
    The limiter takes some loudness away (measured as the change in gated RMS, which costs far
    less than measuring the K-weighted loudness again), so a second pass makes up what it can.
    Silence gets a gain of 1.
    """
    out = audio.astype(np.float32, copy=True)
    curve = np.ones(out.shape[0], np.float32)
    ceiling = 10 ** (ceiling_dbfs / 20)
    level = integrated_lufs(out, sample_rate)
    if not np.isfinite(level):
        return curve
    gain_db = min(target_lufs - level, MAX_GAIN_DB)
    for _ in range(2):
        if abs(gain_db) < 0.05:
            break
        gain = np.float32(10 ** (gain_db / 20))
        out *= gain
        curve *= gain
        before = gated_rms_dbfs(out, sample_rate)
        limit = _limit_curve(out, ceiling)
        if limit is not None:
            out *= limit[:, None]
            curve *= limit
        gain_db = min(before - gated_rms_dbfs(out, sample_rate), MAX_GAIN_DB)
    return curve


@dataclass
class Mastered:
    """A clip ready to encode: (frames, 2) float32 ``audio`` (faded; for a stem, fitted to the band's
    length) and the (frames,) float32 gain ``curve`` that `loudness_gain` found for the whole mix."""

    audio: np.ndarray
    curve: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.audio.shape[0])

    def chunks(self, frames: int = 44100) -> Iterator[bytes]:
        """The 16-bit little-endian PCM `encode` hands ffmpeg, ``frames`` frames at a time: the same
        bytes, since every step after the gain curve is per sample."""
        ceiling = 10 ** (SAMPLE_CEILING_DBFS / 20)
        for start in range(0, self.frames, max(1, frames)):
            part = slice(start, start + frames)
            out = np.clip(self.audio[part] * self.curve[part, None], -ceiling, ceiling)
            yield np.rint(out * 32767.0).astype("<i2").tobytes()


def master(pcm: np.ndarray, sample_rate: int, band: np.ndarray | None = None) -> Mastered:
    """Fade and measure 16-bit stereo PCM as `encode` does, leaving the per-sample work to `Mastered.chunks`.

    Args and Raises: as `encode` (without the format).
    """
    check_pcm(pcm, sample_rate)
    audio = pcm.astype(np.float32) / 32768.0
    if band is None:
        audio = fade_out(audio, sample_rate).astype(np.float32, copy=False)
        return Mastered(audio, loudness_gain(audio, sample_rate))
    full = fade_out(band.astype(np.float32) / 32768.0, sample_rate)
    stem = np.zeros(full.shape, np.float32)
    stem[: min(full.shape[0], audio.shape[0])] = audio[: full.shape[0]]
    return Mastered(fade_out(stem, sample_rate), loudness_gain(full, sample_rate))


def check_pcm(pcm: np.ndarray, sample_rate: int) -> None:
    """Raise `RenderError` unless ``pcm`` is non-empty (frames, 2) int16 at a positive rate."""
    if not isinstance(pcm, np.ndarray) or pcm.ndim != 2 or pcm.shape[1] != 2 or pcm.dtype != np.int16:
        shape = getattr(pcm, "shape", None)
        dtype = getattr(pcm, "dtype", type(pcm).__name__)
        raise RenderError(f"PCM must be (frames, 2) int16, got shape {shape} dtype {dtype}")
    if pcm.shape[0] == 0:
        raise RenderError("PCM is empty: nothing to encode")
    if sample_rate <= 0:
        raise RenderError(f"sample rate {sample_rate} Hz must be positive")


def _sosfilt_frames(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``scipy.signal.sosfilt(sos, x, axis=0)`` for (frames, channels) float32, bit for bit: the
    same compiled kernel, called as sosfilt calls it (channels as C-ordered rows, zero state)."""
    kernel = _sosfilt_kernel()
    if kernel is None:
        from scipy.signal import sosfilt

        return sosfilt(sos, x, axis=0)
    rows = np.array(np.moveaxis(x, 0, -1), sos.dtype, order="C")  # (channels, frames), filtered in place
    kernel(sos, rows, np.zeros((rows.shape[0], sos.shape[0], 2), sos.dtype))
    return np.moveaxis(rows, -1, 0)


@lru_cache(maxsize=1)
def _sosfilt_kernel() -> Callable[..., None] | None:
    """scipy's compiled ``_sosfilt`` loaded on its own: importing ``scipy.signal`` for it costs
    ~0.5 s of a cold ``chorus compose`` (the package imports scipy.stats). None: use sosfilt."""
    try:
        spec = importlib.util.find_spec("scipy")
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in roots:
            for path in sorted(Path(root, "signal").glob("_sosfilt.*")):
                if any(path.name.endswith(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES):
                    loader = importlib.machinery.ExtensionFileLoader("scipy.signal._sosfilt", str(path))
                    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
                    loader.exec_module(module)
                    return module._sosfilt
    except (ImportError, OSError, AttributeError) as exc:
        log.debug("scipy's _sosfilt kernel not loaded alone (%s); using scipy.signal.sosfilt", exc)
    return None


def _stem_of(audio: np.ndarray, band: np.ndarray, sample_rate: int) -> np.ndarray:
    """(frames, 2) float audio (not yet faded) of some of the band's parts at the gain the whole
    band's render ``band`` ((frames', 2) int16, the same song) gets: faded and normalised as the
    full clip is.
    The clip keeps the band's length (its parts stop no later; a longer render is cut)."""
    full = fade_out(band.astype(np.float32) / 32768.0, sample_rate)
    curve = loudness_gain(full, sample_rate)
    frames = full.shape[0]
    stem = np.zeros((frames, 2), np.float32)
    stem[: min(frames, audio.shape[0])] = audio[:frames]
    stem = fade_out(stem, sample_rate)
    ceiling = 10 ** (SAMPLE_CEILING_DBFS / 20)
    return np.clip(stem * curve[:, None], -ceiling, ceiling)


def _limit(audio: np.ndarray, ceiling: float, block: int = 256, hold: int = 8) -> np.ndarray:
    """Pull peaks of (frames, 2) float32 audio down to `ceiling` (linear) with a smooth gain
    (`_limit_curve`)."""
    curve = _limit_curve(audio, ceiling, block, hold)
    return audio if curve is None else audio * curve[:, None]


def _limit_curve(audio: np.ndarray, ceiling: float, block: int = 256, hold: int = 8) -> np.ndarray | None:
    """The limiter's gain per frame, (frames,) float32, for (frames, 2) float32 audio; None when
    no peak is over `ceiling` (linear).

    Each block of `block` frames (~6 ms) gets the gain its peak needs; that gain is held
    `hold` blocks (~45 ms) either side, so it ramps in before a peak and releases after it.
    At each block boundary the gain is the lower of the two blocks' and it moves linearly
    in between, so no sample gets more gain than its own block allows: none ends above the
    ceiling, and the gain never jumps.
    """
    frames = audio.shape[0]
    n = -(-frames // block)
    padded = np.zeros((n * block, 2), np.float32)
    padded[:frames] = audio
    peaks = np.abs(padded.reshape(n, 2 * block)).max(axis=1)  # (n,) block peaks, both channels
    if frames == 0 or float(peaks.max()) <= ceiling:
        return None
    need = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
    window = np.lib.stride_tricks.sliding_window_view(
        np.pad(need, hold, constant_values=1.0), 2 * hold + 1)
    gain = window.min(axis=1)  # (n,)
    edges = np.minimum(np.r_[gain[0], gain], np.r_[gain, gain[-1]]).astype(np.float32)  # (n + 1,)
    ramp = np.arange(block, dtype=np.float32) / block
    curve = edges[:-1, None] + (edges[1:] - edges[:-1])[:, None] * ramp  # (n, block)
    return curve.reshape(-1)[:frames]


def codec(fmt: str) -> tuple[str, tuple[str, ...]]:
    """The ffmpeg container and codec arguments of ``fmt``; `RenderError` names the offered formats."""
    if fmt not in _CODECS:
        raise RenderError(f"unknown audio format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return _CODECS[fmt]


def tool(name: str) -> str:
    """The path of an ffmpeg tool (``ffmpeg``, ``ffprobe``) on PATH, or a `RenderError`."""
    path = shutil.which(name)
    if path is None:
        raise RenderError(f"{name} not found on PATH (install ffmpeg)")
    return path


def run(cmd: list[str], stdin: bytes | None, timeout_s: float, what: str) -> bytes:
    """Run a command with a time limit; returns stdout or raises RenderError with stderr's end."""
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{what}: timed out after {timeout_s:.0f} s") from exc
    except OSError as exc:
        raise RenderError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RenderError(f"{what}: {tail[0]}")
    return done.stdout
