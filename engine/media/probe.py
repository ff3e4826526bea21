"""Probing: what ffprobe says about an encoded clip (duration, codec, rate, channels)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.errors import RenderError
from engine.media.encode import codec, run, tool

_FFPROBE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AudioInfo:
    """What ffprobe says about an encoded clip."""

    duration_s: float
    codec: str  # ffprobe codec_name: "vorbis", "mp3", "flac"
    sample_rate: int  # Hz
    channels: int


def probe(encoded: bytes, fmt: str) -> AudioInfo:
    """Read duration, codec, rate and channels of an encoded clip with ffprobe.

    Raises:
        RenderError: unknown format, ffprobe missing, or the bytes are not audio.
    """
    codec(fmt)
    ffprobe = tool("ffprobe")
    with tempfile.TemporaryDirectory(prefix="chorus-probe-") as tmp:
        path = Path(tmp) / f"clip.{fmt}"
        path.write_bytes(encoded)
        cmd = [ffprobe, "-v", "error", "-select_streams", "a:0",
               "-show_entries", "format=duration:stream=codec_name,sample_rate,channels",
               "-of", "default=noprint_wrappers=1", str(path)]
        text = run(cmd, None, _FFPROBE_TIMEOUT_S, f"ffprobe could not read the {fmt} clip")
    fields = dict(line.split("=", 1) for line in text.decode().splitlines() if "=" in line)
    try:
        return AudioInfo(float(fields["duration"]), fields["codec_name"],
                         int(fields["sample_rate"]), int(fields["channels"]))
    except (KeyError, ValueError) as exc:
        raise RenderError(f"ffprobe gave no audio stream for the {fmt} clip: {fields}") from exc


def duration_s(encoded: bytes, fmt: str) -> float:
    """Duration of an encoded clip in seconds, as ffprobe reports it."""
    return probe(encoded, fmt).duration_s
