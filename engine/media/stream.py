"""Streamed encoding: an ffmpeg process started before the audio is ready, fed 16-bit PCM in chunks.

`StreamEncoder` starts ffmpeg (process start and codec set-up, ~20-40 ms) while the clip is still
being rendered; `feed` then writes `engine.media.encode.Mastered.chunks` into its stdin, so ffmpeg
encodes one chunk while the next is scaled and converted. The bytes written are exactly the ones
`engine.media.encode.encode` hands ffmpeg, with the same command, so the file is byte-identical.

The loudness gain needs the whole render (integrated loudness, the limiter's make-up), so ffmpeg
cannot start encoding before rendering ends without changing the sound; what overlaps is ffmpeg's
start-up with rendering, and ffmpeg's encoding with the per-sample scaling. The big overlap (one
clip's encoding with the next clip's rendering and sampling) is `engine.compose.pipeline`'s.

Blocks for up to a few seconds: call it off the event loop.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from engine.errors import RenderError, Stopped
from engine.media.encode import FFMPEG_TIMEOUT_S, Mastered, codec, ffmpeg_command, tool

log = logging.getLogger(__name__)

CHUNK_FRAMES = 32768  # ~0.74 s at 44.1 kHz, 128 KiB of PCM per write


class StreamEncoder:
    """One clip's ffmpeg process, writing ``fmt`` into a temporary file.

    Args:
        sample_rate: rate of the PCM that will be fed, in Hz.
        fmt: one of `engine.media.encode.FORMATS`.

    Raises:
        RenderError: unknown format, ffmpeg missing or not startable.

    Call `feed` once, or `abort` to stop the process and remove its file.
    """

    def __init__(self, sample_rate: int, fmt: str = "ogg") -> None:
        codec(fmt)
        if sample_rate <= 0:
            raise RenderError(f"sample rate {sample_rate} Hz must be positive")
        self.fmt = fmt
        self.sample_rate = int(sample_rate)
        self._tmp = Path(tempfile.mkdtemp(prefix="chorus-enc-"))
        self._out = self._tmp / f"clip.{fmt}"
        self._stderr = tempfile.TemporaryFile(dir=self._tmp)  # a file: a full stderr pipe would block ffmpeg
        try:
            self._proc = subprocess.Popen(ffmpeg_command(tool("ffmpeg"), fmt, self.sample_rate, self._out),
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._stderr)
        except (OSError, RenderError) as exc:
            self._cleanup()
            raise RenderError(f"ffmpeg could not encode {fmt}: {exc}") from exc

    def feed(self, mastered: Mastered, chunk_frames: int = CHUNK_FRAMES, stop: threading.Event | None = None) -> bytes:
        """Write the clip's PCM into ffmpeg chunk by chunk; returns the encoded file's bytes.

        Raises:
            RenderError: ffmpeg failed, closed its input early or timed out.
            Stopped: ``stop`` was set (checked between chunks; ffmpeg is killed).
        """
        what = f"ffmpeg could not encode {self.fmt}"
        try:
            try:
                for chunk in mastered.chunks(chunk_frames):
                    if stop is not None and stop.is_set():
                        raise Stopped("the job was stopped")
                    self._proc.stdin.write(chunk)
                self._proc.stdin.close()
            except (BrokenPipeError, OSError) as exc:  # ffmpeg died: its stderr says why
                self._stop()
                raise RenderError(f"{what}: {self._last_error() or exc}") from exc
            except BaseException:  # a time limit or a bug while converting: no ffmpeg left waiting
                self._stop()
                raise
            try:
                code = self._proc.wait(timeout=FFMPEG_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                self._stop()
                raise RenderError(f"{what}: timed out after {FFMPEG_TIMEOUT_S:.0f} s") from exc
            if code != 0:
                raise RenderError(f"{what}: {self._last_error() or 'no message'}")
            return self._out.read_bytes()
        finally:
            self._cleanup()

    def abort(self) -> None:
        """Stop ffmpeg (the clip failed before its audio was ready) and remove the temporary file."""
        self._stop()
        self._cleanup()

    def _stop(self) -> None:
        """Kill ffmpeg if it still runs, reap it and close its input."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:  # the pipe's other end is gone: nothing left to flush
                pass

    def _last_error(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def _cleanup(self) -> None:
        self._stderr.close()
        shutil.rmtree(self._tmp, ignore_errors=True)
