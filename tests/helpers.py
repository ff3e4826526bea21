"""Builders shared by the tests: small MIDI files and WJazzD-style CSV solos written here.

Nothing in here copies corpus data: every note below was written for the tests.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

import mido
import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"

# A ii-V-I tune in C, two bars per chord pair: (bar, beat, tatum, division, pitch, dur_beats)
TUNE = [
    (1, 1, 1, 2, 62, 0.45), (1, 1, 2, 2, 65, 0.45), (1, 2, 1, 1, 69, 0.9), (1, 3, 1, 3, 72, 0.3),
    (1, 3, 2, 3, 71, 0.3), (1, 3, 3, 3, 69, 0.3), (1, 4, 1, 1, 67, 0.9),
    (2, 1, 1, 2, 65, 0.45), (2, 1, 2, 2, 64, 0.45), (2, 2, 1, 1, 62, 1.9),
    (3, 1, 1, 4, 64, 0.22), (3, 1, 2, 4, 67, 0.22), (3, 1, 3, 4, 71, 0.22), (3, 1, 4, 4, 74, 0.22),
    (3, 2, 1, 2, 72, 0.45), (3, 2, 2, 2, 71, 0.45), (3, 3, 1, 1, 67, 1.8),
    (4, 1, 1, 1, 64, 3.6),
]
CHANGES = [(1, 1, "D-7"), (1, 3, "G7"), (2, 1, "Cj7"), (3, 1, "A-7"), (3, 3, "D79b"), (4, 1, "G7alt")]
MELODY_COLS = ["bar", "beat", "beatdur", "denom", "division", "duration", "num", "onset", "period",
               "pitch", "subtatum", "tatum"]
BEATS_COLS = ["bar", "bass_pitch", "beat", "chord", "chorus_id", "form", "onset", "signature"]


def write_wjazzd(root: Path, solos: int = 2, beat_s: float = 0.4, labels: list[tuple[str, str]] | None = None) -> Path:
    """Write a WJazzD-shaped folder (index.csv, csv_melody/, csv_beats/) of ``solos`` solos.

    ``labels``: (performer, style) per solo, cycled; without it every solo is by "Tester" and has no style.
    """
    (root / "csv_melody").mkdir(parents=True, exist_ok=True)
    (root / "csv_beats").mkdir(parents=True, exist_ok=True)
    index_rows = []
    for s in range(solos):
        name = f"Tester_Tune{s}_Solo.csv"
        with (root / "csv_melody" / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(MELODY_COLS)
            for bar, beat, tatum, div, pitch, dur in TUNE:
                onset = ((bar - 1) * 4 + beat - 1 + (tatum - 1) / div) * beat_s
                w.writerow([bar, beat, beat_s, 4, div, dur * beat_s, 4, onset, 4, pitch + s, 0, tatum])
        with (root / "csv_beats" / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(BEATS_COLS)
            chords = {(b, bt): c for b, bt, c in CHANGES}
            for bar in range(1, 5):
                for beat in range(1, 5):
                    w.writerow([bar, 36, beat, chords.get((bar, beat), ""), 1, "A1" if beat == 1 else "",
                                ((bar - 1) * 4 + beat - 1) * beat_s, "4/4" if (bar, beat) == (1, 1) else ""])
        performer, style = labels[s % len(labels)] if labels else ("Tester", None)
        row = {"melid": s + 1, "trackid": s + 1, "performer": performer, "title": f"Tune {s}",
               "avgtempo": 60 / beat_s, "signature": "4/4",
               "melody_csv": f"csv_melody/{name}", "beats_csv": f"csv_beats/{name}"}
        if style is not None:
            row["style"] = style
        index_rows.append(row)
    with (root / "index.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(index_rows[0]))
        w.writeheader()
        w.writerows(index_rows)
    return root


def midi_bytes(parts: list[dict], ticks_per_beat: int = 480, tempo_bpm: float = 120.0,
               meter: tuple[int, int] | None = (4, 4), file_type: int = 1) -> bytes:
    """Build a MIDI file. Each part: name, channel, program, notes [(onset_beats, dur_beats, pitch)]."""
    mid = mido.MidiFile(type=file_type, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm), time=0))
    if meter:
        meta.append(mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1], time=0))
    tracks = [meta]
    for part in parts:
        events = []
        for onset, dur, pitch in part["notes"]:
            events.append((round(onset * ticks_per_beat), 1, pitch))
            events.append((round((onset + dur) * ticks_per_beat), 0, pitch))
        events.sort()
        tr = mido.MidiTrack()
        tr.append(mido.MetaMessage("track_name", name=part.get("name", ""), time=0))
        ch = part.get("channel", 0)
        tr.append(mido.Message("program_change", program=part.get("program", 0), channel=ch, time=0))
        last = 0
        for tick, on, pitch in events:
            tr.append(mido.Message("note_on" if on else "note_off", note=pitch, velocity=80 if on else 0,
                                   channel=ch, time=tick - last))
            last = tick
        tracks.append(tr)
    if file_type == 0:
        merged = mido.merge_tracks(tracks)
        mid.tracks.append(merged)
    else:
        mid.tracks.extend(tracks)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def tune_melody() -> list[tuple[float, float, int]]:
    return [((bar - 1) * 4 + beat - 1 + (tatum - 1) / div, dur, pitch) for bar, beat, tatum, div, pitch, dur in TUNE]


def comping(chords: list[tuple[float, float, list[int]]]) -> list[tuple[float, float, int]]:
    return [(onset, dur, p) for onset, dur, pitches in chords for p in pitches]


# Accompaniment for TUNE: Dm7 G7 | Cmaj7 | Am7 D7 | G7
COMP = [(0, 2, [50, 53, 57, 60]), (2, 2, [43, 53, 59, 62]), (4, 4, [48, 52, 55, 59]),
        (8, 2, [45, 55, 60, 64]), (10, 2, [50, 54, 57, 60]), (12, 4, [43, 53, 59, 62])]
COMP_LABELS = ["Dm7 G7", "Cmaj7", "Am7 D7", "G7"]


def combo_midi(file_type: int = 1, drums: bool = True) -> bytes:
    """The test tune with a piano part, a bass part and (optionally) drums."""
    parts = [
        {"name": "Piano", "channel": 0, "program": 0, "notes": comping(COMP)},
        {"name": "Melody", "channel": 1, "program": 26, "notes": tune_melody()},
        {"name": "Bass", "channel": 2, "program": 32,
         "notes": [(o, d, ps[0] - 12) for o, d, ps in COMP]},
    ]
    if drums:
        parts.append({"name": "Drums", "channel": 9, "notes": [(b, 0.2, 42) for b in range(16)]})
    return midi_bytes(parts, file_type=file_type)


def heavy_seed_midi(target_bytes: int = 360_000, ticks_per_beat: int = 480, bpm: int = 180) -> bytes:
    """A valid, event-heavy seed of about ``target_bytes``: five voices of 16th notes at ``bpm``.

    Every event carries its status byte (4 bytes an event), so 360 KB holds about 90,000 events,
    under `engine.formats.seed.SeedLimits`' 100,000, and lasts about 12.5 minutes (under its 20).
    """
    body = bytearray(b"\x00\xff\x51\x03" + round(60e6 / bpm).to_bytes(3, "big"))
    step = ticks_per_beat // 4  # a 16th note in ticks; under 128, so a one-byte delta
    i = 0
    while len(body) < target_bytes - 40:
        pitches = [48 + v * 7 + (i * 5 + v) % 12 for v in range(5)]
        body += b"".join(bytes([0, 0x90 | v, p, 70 + v]) for v, p in enumerate(pitches))
        body += b"".join(bytes([step if v == 0 else 0, 0x80 | v, p, 0]) for v, p in enumerate(pitches))
        i += 1
    body += b"\x00\xff\x2f\x00"
    head = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    return head + ticks_per_beat.to_bytes(2, "big") + b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def corpus_dir() -> Path:
    """The real corpora, or a skip (only outside CI: under CI=true a missing corpus fails)."""
    root = Path(os.environ.get("CHORUS_CORPUS_DIR", REPO.parent / "shared" / "corpus"))
    if not root.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the real corpora are missing at {root} (CI=true needs them)")
        pytest.skip(f"real corpora not present at {root}")
    return root


def work_item(out_root: Path, job_id: str, seconds: float = 6, checkpoint: str = "jazz", ck_hash: str = "",
              changes: str | None = None, **req):
    """A `bot.queues.base.WorkItem` for the queue tests. ``changes`` is carried as text without being
    checked, so a bad chord reaches the worker (as a stored job from another version could)."""
    from bot.queues.base import WorkItem
    from engine.compose.request import ComposeRequest

    request = ComposeRequest("jazz", seconds, seed=req.pop("seed", 1), changes_text=changes, **req)
    return WorkItem(job_id, request, checkpoint, ck_hash, str(out_root / "jobs" / job_id))


# -- hostile archives (checkpoint installs): built by hand so that a 1 GB bomb takes a fraction of a second --

def deflated_zip(members: list[tuple[str, bytes | int]]) -> bytes:
    """A zip of ``(name, data)`` members, each deflated; an ``int`` instead of data is that many
    zero bytes, compressed once and repeated, so 21 members of 48 MiB of zeros build in ~0.3 s."""
    import struct
    import zlib

    zero_cache: dict[int, tuple[bytes, int]] = {}

    def payload(data: bytes | int) -> tuple[bytes, int, int]:
        if isinstance(data, int):
            if data not in zero_cache:
                zeros = bytes(data)
                comp = zlib.compressobj(9, zlib.DEFLATED, -15)
                zero_cache[data] = (comp.compress(zeros) + comp.flush(), zlib.crc32(zeros))
            block, crc = zero_cache[data]
            return block, crc, data
        comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        return comp.compress(data) + comp.flush(), zlib.crc32(data), len(data)

    out, central = io.BytesIO(), io.BytesIO()
    for name, data in members:
        block, crc, size = payload(data)
        raw = name.encode()
        offset = out.tell()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(block), size, len(raw), 0))
        out.write(raw)
        out.write(block)
        central.write(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(block), size,
                                  len(raw), 0, 0, 0, 0, 0o100644 << 16, offset))
        central.write(raw)
    cd_offset, cd = out.tell(), central.getvalue()
    out.write(cd)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(cd), cd_offset, 0))
    return out.getvalue()


def zip_bomb(pads: int = 21, pad_bytes: int = 48 * 1024 * 1024, filler_bytes: int = 11 * 1024 * 1024,
             meta: bytes = b"{}") -> bytes:
    """About 12 MB of zip that unpacks to about 1 GB: ``pads`` members of zeros (each just under
    the old per-member cap), then an incompressible ``model.safetensors`` and a ``meta.json``."""
    filler = os.urandom(filler_bytes)
    return deflated_zip([(f"pad{i:02d}.bin", pad_bytes) for i in range(pads)]
                        + [("model.safetensors", filler), ("meta.json", meta)])


def many_member_tgz(n: int = 100_000) -> bytes:
    """A tar.gz of ``n`` empty regular files (``f000000``...), built from one patched header (~0.3 s)."""
    import gzip
    import tarfile

    template = tarfile.TarInfo("f000000").tobuf(tarfile.GNU_FORMAT)  # one 512-byte header
    rest = sum(template[7:148]) + 8 * 32 + sum(template[156:])  # the checksum counts its own field as spaces
    headers = []
    for i in range(n):
        name = b"f%06d" % i
        headers.append(name + template[7:148] + b"%06o\0 " % (rest + sum(name)) + template[156:])
    headers.append(bytes(1024))  # the end-of-archive marker
    return gzip.compress(b"".join(headers), compresslevel=1)


def run_chorus(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``chorus ARGS`` in this process (`bot.cli.main`), as a subprocess would report it: exit code,
    stdout and stderr (with the log lines ``chorus`` prints at its default level). Each subcommand
    also keeps one real subprocess test; the rest run here, without a new interpreter's imports.
    ``env`` sets environment variables for the call only."""
    import contextlib
    import logging

    from bot.cli import main

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.INFO if "-v" in args or "--verbose" in args else logging.WARNING)
    handler.setFormatter(logging.Formatter("chorus: %(message)s"))
    root, before = logging.getLogger(), os.getcwd()
    root.addHandler(handler)
    saved = {k: os.environ.get(k) for k in env or {}}
    try:
        os.environ.update(env or {})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(before)
        root.removeHandler(handler)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return subprocess.CompletedProcess(["chorus", *args], code, out.getvalue(), err.getvalue())
