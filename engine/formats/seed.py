"""The safe front door for user-uploaded seed MIDI files.

`mido` trusts what it reads: a crafted file under 1 MiB can keep ``mido.MidiFile()`` busy for
minutes (its variable-length-quantity reader shifts an ever-growing integer, so a long run of
continuation bytes is quadratic), it raises many exception types besides ``OSError`` and
``EOFError``, and it loads nonsense (0 ticks per beat, SMPTE division, 0 tracks) without complaint.

`load_seed_midi` therefore checks an upload in four steps, all against `SeedLimits`:

1. size: at most ``max_bytes``;
2. structure, in pure Python over the bytes (`_scan`): the ``MThd`` header, every chunk's length
   against the bytes left, at most ``max_tracks`` tracks, and every event of every ``MTrk`` (variable
   length quantities of at most 4 bytes, running status, meta, sysex and channel messages, each
   ending inside its chunk), at most ``max_events`` events, with a CPU-time check every
   1,024 events; unknown chunks are skipped, and the bytes handed to mido hold only the header and
   the declared tracks. After the last declared track, up to `MAX_TRAILING_BYTES` that do not
   form a whole chunk are ignored, as mido and common players ignore them (some writers pad files
   or leave a few stray bytes); a track cut short is still refused;
3. parse: mido reads the checked bytes through a reader that enforces the same CPU budget; any
   exception mido raises becomes "damaged or truncated";
4. content: the music lasts at most ``max_seconds`` and has non-drum notes.

`read_seed` then reads the loaded file as a lead sheet with `engine.formats.midiread.read_midi`.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field

import mido

from engine.errors import MidiReadError
from engine.formats.midiread import DRUM_CHANNEL, read_midi
from engine.music.leadsheet import LeadSheet

log = logging.getLogger(__name__)

NOT_MIDI = "this is not a MIDI file"
DAMAGED = "this MIDI file is damaged or truncated"
NO_TRACKS = "this MIDI file has no tracks"
BAD_DIVISION = "this MIDI file uses a time division Chorus cannot read"
NO_NOTES = "this file has no melody notes"
ONLY_DRUMS = "this file has only drums"
TOO_SLOW = "this MIDI file took too long to read"

DEFAULT_TEMPO = 500_000  # microseconds per beat (120 bpm), the MIDI default
# Durations count any tempo faster than 1000 bpm as 1000 bpm, so that ``max_seconds`` also bounds
# the length in beats (20,000 beats for 20 minutes) that the lead-sheet reader walks bar by bar.
FASTEST_TEMPO = 60_000  # microseconds per beat
MAX_VLQ_BYTES = 4  # the MIDI file format's limit for a variable-length quantity
CHECK_EVERY = 1024  # events (scan) or reads (mido) between two deadline checks
MAX_TRAILING_BYTES = 4096  # bytes after the last declared track that need not form a whole chunk


class SeedMidiError(MidiReadError):
    """An uploaded seed MIDI file was refused; the message is short and meant for the user."""


@dataclass(frozen=True)
class SeedLimits:
    """What an uploaded seed may cost.

    Attributes:
        max_bytes: size of the upload in bytes.
        max_tracks: ``MTrk`` chunks the header may declare.
        max_events: MIDI events over all tracks (meta, sysex and channel messages).
        max_seconds: duration of the music in seconds.
        cpu_seconds: CPU time of the calling thread for checking and parsing together. CPU time,
            not wall time: waiting for a core on a busy machine does not count against a file.
            A file at ``max_events`` takes about 1-1.4 CPU s on a 2-core test machine.
    """

    max_bytes: int = 1_048_576
    max_tracks: int = 64
    max_events: int = 100_000
    max_seconds: float = 1200.0
    cpu_seconds: float = 3.0

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_tracks", "max_events"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SeedLimits.{name} must be a positive int, got {value!r}")
        for name in ("max_seconds", "cpu_seconds"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"SeedLimits.{name} must be >= 0, got {value!r}")


DEFAULT_LIMITS = SeedLimits()


@dataclass
class _Track:
    """What the scan learnt of one ``MTrk``: where its body lies and what it holds."""

    start: int  # byte offset of the chunk header
    end: int  # byte offset just past the body
    end_tick: int = 0
    events: int = 0
    tempos: list[tuple[int, int]] = field(default_factory=list)  # (tick, microseconds per beat)
    note_channels: set[int] = field(default_factory=set)  # channel indexes with a sounding note-on


@dataclass
class _Scan:
    """The checked structure of a whole file."""

    fmt: int
    ntracks: int
    ticks_per_beat: int
    tracks: list[_Track]


class _Deadline:
    """A budget of the calling thread's CPU time; `check` raises `SeedMidiError` once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.at = time.thread_time() + seconds

    def check(self) -> None:
        if time.thread_time() >= self.at:
            raise SeedMidiError(TOO_SLOW)


class _DeadlineReader(io.BytesIO):
    """In-memory bytes that check a deadline every `CHECK_EVERY` reads (mido reads byte by byte)."""

    def __init__(self, data: bytes, deadline: _Deadline) -> None:
        super().__init__(data)
        self._deadline = deadline
        self._reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self._reads += 1
        if self._reads % CHECK_EVERY == 0:
            self._deadline.check()
        return super().read(size)


def _damaged(pos: int, why: str) -> SeedMidiError:
    log.debug("seed MIDI refused at byte %d: %s", pos, why)
    return SeedMidiError(DAMAGED)


def _vlq(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a variable-length quantity of at most 4 bytes ending before ``end``: (value, new pos)."""
    value = 0
    for i in range(pos, min(pos + MAX_VLQ_BYTES, end)):
        byte = data[i]
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i + 1
    raise _damaged(pos, "variable-length quantity runs past 4 bytes or its chunk")


def _scan_header(data: bytes, limits: SeedLimits) -> tuple[_Scan, int]:
    """Check the ``MThd`` chunk; return the scan so far and the offset of the first chunk after it."""
    if len(data) < 14:
        raise _damaged(len(data), "shorter than a header")
    length = int.from_bytes(data[4:8], "big")
    if length < 6 or length > len(data) - 8:
        raise _damaged(4, f"header length {length}")
    fmt = int.from_bytes(data[8:10], "big")
    ntracks = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    if fmt > 2:
        raise _damaged(8, f"format {fmt}")
    if ntracks == 0:
        raise SeedMidiError(NO_TRACKS)
    if ntracks > limits.max_tracks:
        raise SeedMidiError(f"this MIDI file has too many tracks (max {limits.max_tracks})")
    if division == 0 or division & 0x8000:  # 0 ticks per beat, or SMPTE frames
        log.debug("seed MIDI refused: division 0x%04x", division)
        raise SeedMidiError(BAD_DIVISION)
    return _Scan(fmt, ntracks, division, []), 8 + length


def _scan(data: bytes, limits: SeedLimits, deadline: _Deadline) -> _Scan:
    """Walk every chunk and every event of the declared tracks.

    Raises:
        SeedMidiError: a broken structure or a limit passed.
    """
    scan, pos = _scan_header(data, limits)
    events = 0
    while pos < len(data):
        rest = len(data) - pos
        length = int.from_bytes(data[pos + 4:pos + 8], "big") if rest >= 8 else None
        if length is None or length > rest - 8:  # not a whole chunk: stray bytes, or a cut track
            if len(scan.tracks) == scan.ntracks and rest <= MAX_TRAILING_BYTES:
                log.debug("seed MIDI: ignoring %d trailing bytes after the last track", rest)
                break
            raise _damaged(pos, f"{rest} bytes left, not a whole chunk")
        kind, body = data[pos:pos + 4], pos + 8
        if kind == b"MTrk" and len(scan.tracks) < scan.ntracks:
            track = _Track(pos, body + length)
            _scan_track(data, body, track, limits.max_events - events, limits, deadline)
            events += track.events
            scan.tracks.append(track)
        else:
            log.debug("seed MIDI: skipping %r chunk of %d bytes at %d", kind, length, pos)
        pos = body + length
    if len(scan.tracks) < scan.ntracks:
        raise _damaged(pos, f"{len(scan.tracks)} of {scan.ntracks} tracks present")
    return scan


def _scan_track(data: bytes, pos: int, track: _Track, budget: int, limits: SeedLimits,
                deadline: _Deadline) -> None:
    """Walk one track body (``data[pos:track.end]``) event by event, filling in ``track``.

    Running status follows mido: meta events leave it alone, sysex clears it (mido would misread
    a data byte after a sysex, so such files are refused).
    """
    end = track.end
    tick = 0
    running = 0  # last channel status byte, 0 for none
    while pos < end:
        delta, pos = _vlq(data, pos, end)
        tick += delta
        if pos >= end:
            raise _damaged(pos, "delta time without an event")
        status = data[pos]
        if status < 0x80:
            if not running:
                raise _damaged(pos, "data byte without a status")
            status = running
        else:
            pos += 1
        if status == 0xFF:
            pos = _scan_meta(data, pos, end, tick, track)
        elif status in (0xF0, 0xF7):
            running = 0
            _, pos = _blob(data, pos, end)
        elif status >= 0xF0:
            raise _damaged(pos - 1, f"status 0x{status:02x} does not belong in a file")
        else:
            n = 1 if 0xC0 <= status < 0xE0 else 2  # program change, channel pressure: 1 byte
            if n > end - pos or data[pos] >= 0x80 or (n == 2 and data[pos + 1] >= 0x80):
                raise _damaged(pos, "channel message cut short")
            if status & 0xF0 == 0x90 and data[pos + 1] > 0:
                track.note_channels.add(status & 0x0F)
            running = status
            pos += n
        track.events += 1
        if track.events > budget:
            raise SeedMidiError(f"this MIDI file has too many events (max {limits.max_events:,})")
        if track.events % CHECK_EVERY == 0:
            deadline.check()
    track.end_tick = tick


def _blob(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a length-prefixed body (sysex or meta data) that must end by ``end``: (start, end)."""
    length, pos = _vlq(data, pos, end)
    if length > end - pos:
        raise _damaged(pos, f"event length {length} runs past its chunk")
    return pos, pos + length


def _scan_meta(data: bytes, pos: int, end: int, tick: int, track: _Track) -> int:
    """Skip a meta event after its 0xFF, noting a tempo change; return the offset after it."""
    if pos >= end:
        raise _damaged(pos, "meta event without a type")
    meta_type = data[pos]
    body, body_end = _blob(data, pos + 1, end)
    if meta_type == 0x51:  # set tempo: microseconds per beat in the first 3 bytes, as mido reads it
        tempo = int.from_bytes(data[body:body + 3], "big")
        if body_end - body < 3 or tempo == 0:
            raise _damaged(pos, "bad tempo")
        track.tempos.append((tick, tempo))
    return body_end


def _seconds(tempos: list[tuple[int, int]], end_tick: int, ticks_per_beat: int) -> float:
    """Seconds from tick 0 to ``end_tick`` under a sorted tempo map (120 bpm until the first)."""
    seconds = 0.0
    last_tick, tempo = 0, DEFAULT_TEMPO
    for tick, new_tempo in tempos:
        if tick >= end_tick:
            break
        seconds += (tick - last_tick) * max(tempo, FASTEST_TEMPO) / 1e6 / ticks_per_beat
        last_tick, tempo = tick, new_tempo
    return seconds + (end_tick - last_tick) * max(tempo, FASTEST_TEMPO) / 1e6 / ticks_per_beat


def _duration(scan: _Scan) -> float:
    """The music's length in seconds: type 2 tracks play one after another, others together."""
    tpb = scan.ticks_per_beat
    if scan.fmt == 2:
        return sum(_seconds(t.tempos, t.end_tick, tpb) for t in scan.tracks)
    tempos = sorted((tempo for t in scan.tracks for tempo in t.tempos), key=lambda x: x[0])
    return _seconds(tempos, max(t.end_tick for t in scan.tracks), tpb)


def _check_content(scan: _Scan, limits: SeedLimits) -> None:
    """Refuse music that is too long, silent, or drums only."""
    seconds = _duration(scan)
    if seconds > limits.max_seconds:
        log.debug("seed MIDI refused: %.0f s long", seconds)
        raise SeedMidiError(f"this MIDI file is too long (max {_describe_seconds(limits.max_seconds)})")
    channels = set().union(*(t.note_channels for t in scan.tracks))
    if not channels:
        raise SeedMidiError(NO_NOTES)
    if channels == {DRUM_CHANNEL}:
        raise SeedMidiError(ONLY_DRUMS)


def _describe_bytes(n: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"


def _describe_seconds(s: float) -> str:
    if s >= 60 and s % 60 == 0:
        minutes = int(s // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{s:g} seconds"


def load_seed_midi(data: bytes, limits: SeedLimits = DEFAULT_LIMITS) -> mido.MidiFile:
    """Check an uploaded MIDI file and load it with mido.

    Args:
        data: the upload's bytes.
        limits: what the upload may cost (see `SeedLimits`).
    Returns:
        The loaded file: ticks per beat > 0, 1 to ``max_tracks`` tracks, some non-drum notes.
    Raises:
        SeedMidiError: with a short reason for the user.
    """
    deadline = _Deadline(limits.cpu_seconds)
    if len(data) > limits.max_bytes:
        raise SeedMidiError(f"this MIDI file is too large (max {_describe_bytes(limits.max_bytes)})")
    data = bytes(data)
    if not data.startswith(b"MThd"):
        raise SeedMidiError(NOT_MIDI)
    scan = _scan(data, limits, deadline)
    deadline.check()
    _check_content(scan, limits)
    # Only the header and the declared tracks go to mido: it cannot skip other chunks.
    header = b"MThd\x00\x00\x00\x06" + data[8:14]
    checked = header + b"".join(data[t.start:t.end] for t in scan.tracks)
    try:
        mid = mido.MidiFile(file=_DeadlineReader(checked, deadline), clip=True)
    except SeedMidiError:
        raise
    except Exception as exc:
        # A broad except on purpose: mido decodes meta data with whatever exception the
        # bad bytes lead to (KeySignatureError, IndexError, ValueError, TypeError, ...), and
        # for an upload every one of them means the same thing to the user.
        log.debug("seed MIDI refused by mido: %r", exc)
        raise SeedMidiError(DAMAGED) from exc
    deadline.check()
    return mid


def check_seed_midi(data: bytes, limits: SeedLimits = DEFAULT_LIMITS) -> float:
    """`load_seed_midi` for a worker process: the loaded file stays there, as pickling 100,000
    events back would cost more than the check.

    Returns:
        The CPU seconds the check took.
    Raises:
        SeedMidiError: with a short reason for the user.
    """
    started = time.thread_time()
    load_seed_midi(data, limits)
    return time.thread_time() - started


def read_seed(data: bytes, limits: SeedLimits = DEFAULT_LIMITS,
              max_bars: int | None = None) -> LeadSheet:
    """Read an uploaded seed MIDI file as a lead sheet titled "seed".

    Args:
        data: the upload's bytes.
        limits: what the upload may cost (see `SeedLimits`).
        max_bars: keep at most this many bars from the start (all when None).
    Raises:
        SeedMidiError: with a short reason for the user.
        ValueError: ``max_bars`` is not positive.
    """
    if max_bars is not None and max_bars < 1:
        raise ValueError(f"max_bars must be positive, got {max_bars!r}")
    mid = load_seed_midi(data, limits)
    try:
        return read_midi(mid, title="seed", max_bars=max_bars)
    except MidiReadError as exc:
        raise SeedMidiError(str(exc)) from exc
