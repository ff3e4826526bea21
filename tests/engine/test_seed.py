"""The seed-upload front door: good files load, every bad one gets its short reason, nothing else."""
from __future__ import annotations

import io
import struct
import threading
import time

import mido
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.formats.seed as seed_mod
from engine.errors import MidiReadError
from engine.formats.seed import (
    MAX_TRAILING_BYTES,
    SeedLimits,
    SeedMidiError,
    check_seed_midi,
    load_seed_midi,
    read_seed,
)
from engine.music.leadsheet import LeadSheet
from tests.helpers import COMP, comping, heavy_seed_midi, tune_melody

TPB = 480


def song(file_type: int) -> bytes:
    """The test tune over piano comping: 100 bpm, then 140 bpm from beat 8, no time signature."""
    meta = mido.MidiTrack([
        mido.MetaMessage("track_name", name="Seed song", time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(140), time=8 * TPB),
    ])
    tracks = [meta]
    for name, channel, notes in (("Melody", 0, tune_melody()), ("Piano", 1, comping(COMP))):
        events = sorted([(round(o * TPB), 1, p) for o, _, p in notes]
                        + [(round((o + d) * TPB), 0, p) for o, d, p in notes])
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        last = 0
        for tick, on, pitch in events:
            track.append(mido.Message("note_on", channel=channel, note=pitch,
                                      velocity=80 if on else 0, time=tick - last))
            last = tick
        tracks.append(track)
    mid = mido.MidiFile(type=file_type, ticks_per_beat=TPB)
    mid.tracks.extend([mido.merge_tracks(tracks)] if file_type == 0 else tracks)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def header(fmt: int = 0, ntracks: int = 1, division: int = TPB) -> bytes:
    return b"MThd" + struct.pack(">LHHH", 6, fmt, ntracks, division)


def chunk(body: bytes, kind: bytes = b"MTrk") -> bytes:
    return kind + struct.pack(">L", len(body)) + body


def vlq(value: int) -> bytes:
    out = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


END = b"\x00\xff\x2f\x00"  # end of track
NOTE = b"\x00\x90\x3c\x50\x83\x60\x80\x3c\x00"  # middle C for one beat on channel 1


def one_track(body: bytes, **kw: int) -> bytes:
    return header(**kw) + chunk(body + END)


def test_type_0_and_type_1_load_and_read() -> None:
    for file_type in (0, 1):
        data = song(file_type)
        mid = load_seed_midi(data)
        assert (mid.type, mid.ticks_per_beat) == (file_type, TPB)
        assert len(mid.tracks) == (1 if file_type == 0 else 3)
        sheet = read_seed(data)
        assert isinstance(sheet, LeadSheet)
        assert sheet.title == "seed"
        assert sheet.tempo == 100.0
        assert sheet.time_signature == (4, 4)
        pitches = [n.pitch for m in sheet.measures for n in m.notes]
        assert pitches == [p for _, _, p in tune_melody()]
        assert len(read_seed(data, max_bars=2).measures) == 2


def test_unknown_chunks_are_skipped() -> None:
    data = song(1)
    first_track = data.index(b"MTrk")
    data = data[:first_track] + chunk(b"anything", b"XFIH") + data[first_track:] + chunk(b"", b"XTRA")
    assert read_seed(data).note_count == len(tune_melody())


def test_running_status_across_meta_events_is_read() -> None:
    body = b"\x00\x90\x3c\x50" + b"\x00\xff\x01\x02hi" + b"\x83\x60\x3c\x00"
    assert read_seed(one_track(body)).note_count == 1


LONG = 1801 * 2 * TPB  # ticks at 120 bpm: just over 30 minutes
BAD_FILES = {
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(64), "this is not a MIDI file"),
    "empty": (b"", "this is not a MIDI file"),
    "truncated": (song(1)[:300], "this MIDI file is damaged or truncated"),
    "header only": (header()[:12], "this MIDI file is damaged or truncated"),
    "track claims 2 GB": (header() + b"MTrk" + struct.pack(">L", 2**31) + NOTE + END,
                          "this MIDI file is damaged or truncated"),
    "header length past the file": (b"MThd\x00\x00\x10\x00" + header()[8:] + chunk(NOTE + END),
                                    "this MIDI file is damaged or truncated"),
    "format 3": (one_track(NOTE, fmt=3), "this MIDI file is damaged or truncated"),
    "0 ticks per beat": (one_track(NOTE, division=0), "this MIDI file uses a time division Chorus cannot read"),
    "SMPTE division": (one_track(NOTE, division=0xE728), "this MIDI file uses a time division Chorus cannot read"),
    "0 tracks": (header(ntracks=0), "this MIDI file has no tracks"),
    "fewer tracks than declared": (header(fmt=1, ntracks=2) + chunk(NOTE + END),
                                   "this MIDI file is damaged or truncated"),
    "65 tracks": (header(fmt=1, ntracks=65) + chunk(NOTE + END) * 65,
                  "this MIDI file has too many tracks (max 64)"),
    "drums only": (one_track(NOTE.replace(b"\x90", b"\x99").replace(b"\x80", b"\x89")),
                   "this file has only drums"),
    "no notes": (one_track(b"\x00\xc0\x05\x00\xff\x03\x04name"), "this file has no melody notes"),
    "silent note-ons only": (one_track(b"\x00\x90\x3c\x00"), "this file has no melody notes"),
    "30 minutes long": (one_track(b"\x00\x90\x3c\x50" + vlq(LONG) + b"\x80\x3c\x00"),
                        "this MIDI file is too long (max 20 minutes)"),
    "5-byte VLQ": (one_track(b"\x81\x80\x80\x80\x00" + NOTE), "this MIDI file is damaged or truncated"),
    "huge meta length": (one_track(b"\x00\xff\x01" + vlq(0x0FFFFFFF) + b"abc" + NOTE),
                         "this MIDI file is damaged or truncated"),
    "huge sysex length": (one_track(b"\x00\xf0" + vlq(0x0FFFFFFF) + b"\x01\xf7" + NOTE),
                          "this MIDI file is damaged or truncated"),
    "event past its chunk": (header() + chunk(NOTE + b"\x00\x90\x3c") + b"\x50\x00\x00\x00\x00\x00",
                             "this MIDI file is damaged or truncated"),
    "running status without a status": (one_track(b"\x00\x3c\x50" + NOTE), "this MIDI file is damaged or truncated"),
    "running status after sysex": (one_track(NOTE + b"\x00\xf0\x01\xf7\x00\x3c\x50"),
                                   "this MIDI file is damaged or truncated"),
    "status byte as data": (one_track(b"\x00\x90\x3c\x90" + NOTE), "this MIDI file is damaged or truncated"),
    "system status in a file": (one_track(b"\x00\xf4" + NOTE), "this MIDI file is damaged or truncated"),
    "zero tempo": (one_track(b"\x00\xff\x51\x03\x00\x00\x00" + NOTE), "this MIDI file is damaged or truncated"),
    "short tempo": (one_track(b"\x00\xff\x51\x02\x07\xa1" + NOTE), "this MIDI file is damaged or truncated"),
    "bad key signature (mido raises)": (one_track(b"\x00\xff\x59\x02\x20\x05" + NOTE),
                                        "this MIDI file is damaged or truncated"),
    "a track cut short": (header(fmt=1, ntracks=2) + chunk(NOTE + END) + chunk(NOTE + END)[:-3],
                          "this MIDI file is damaged or truncated"),
    "stray bytes between tracks": (header(fmt=1, ntracks=2) + chunk(NOTE + END) + b"\x00\x01\x02" + chunk(NOTE + END),
                                   "this MIDI file is damaged or truncated"),
    "more trailing junk than allowed": (one_track(NOTE) + b"\x01" * (MAX_TRAILING_BYTES + 1),
                                        "this MIDI file is damaged or truncated"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_gets_its_reason(name: str) -> None:
    data, reason = BAD_FILES[name]
    with pytest.raises(SeedMidiError) as info:
        read_seed(data)
    assert str(info.value) == reason
    assert isinstance(info.value, MidiReadError)


def test_too_large() -> None:
    with pytest.raises(SeedMidiError, match=r"^this MIDI file is too large \(max 1 MiB\)$"):
        load_seed_midi(song(1) + bytes(1_048_576))


def test_too_many_events() -> None:
    body = b"".join(NOTE for _ in range(60))  # 120 events
    with pytest.raises(SeedMidiError, match=r"^this MIDI file has too many events \(max 100\)$"):
        load_seed_midi(one_track(body), SeedLimits(max_events=100))
    assert load_seed_midi(one_track(body), SeedLimits(max_events=121)).tracks


def test_events_count_over_all_tracks() -> None:
    data = header(fmt=1, ntracks=3) + chunk(NOTE * 20 + END) * 3  # 41 events each
    with pytest.raises(SeedMidiError, match="too many events"):
        load_seed_midi(data, SeedLimits(max_events=100))


def test_custom_duration_limit() -> None:
    data = one_track(b"\x00\x90\x3c\x50" + vlq(91 * 2 * TPB) + b"\x80\x3c\x00")  # 91 s at 120 bpm
    with pytest.raises(SeedMidiError, match=r"^this MIDI file is too long \(max 90 seconds\)$"):
        load_seed_midi(data, SeedLimits(max_seconds=90))
    assert load_seed_midi(data, SeedLimits(max_seconds=92)).tracks


def test_duration_follows_tempo_changes() -> None:
    # 30 minutes of ticks at 120 bpm, but at 240 bpm (from tick 0) it lasts 15 minutes.
    fast = b"\x00\xff\x51\x03" + (250_000).to_bytes(3, "big")
    data = one_track(fast + b"\x00\x90\x3c\x50" + vlq(LONG) + b"\x80\x3c\x00")
    assert load_seed_midi(data).tracks
    # Absurd tempos count as 1000 bpm, so the length in beats stays bounded too.
    absurd = b"\x00\xff\x51\x03\x00\x00\x01"
    data = one_track(absurd + b"\x00\x90\x3c\x50" + vlq(21_000 * TPB) + b"\x80\x3c\x00")
    with pytest.raises(SeedMidiError, match="too long"):
        load_seed_midi(data)


TRAILING = {
    "three stray bytes": b"\x00\x01\x02",
    "seven zeros": bytes(7),
    "a chunk header claiming more than is left": b"MTrk\x00\x00\x10\x00" + bytes(100),
    "padding to a 4 KiB block": b"\x1a" * MAX_TRAILING_BYTES,
}


@pytest.mark.parametrize("name", list(TRAILING))
def test_a_few_trailing_bytes_after_the_last_track_are_ignored_as_mido_ignores_them(name: str) -> None:
    clean = song(1)
    data = clean + TRAILING[name]
    assert read_seed(data) == read_seed(clean)
    ours = load_seed_midi(data)
    theirs = mido.MidiFile(file=io.BytesIO(data))
    assert [list(t) for t in ours.tracks] == [list(t) for t in theirs.tracks]


def test_a_truncated_file_is_still_refused() -> None:
    data = song(1)
    for cut in (1, 3, 40):
        with pytest.raises(SeedMidiError, match=r"^this MIDI file is damaged or truncated$"):
            load_seed_midi(data[:-cut])


def test_timeout() -> None:
    with pytest.raises(SeedMidiError, match=r"^this MIDI file took too long to read$"):
        load_seed_midi(song(1), SeedLimits(cpu_seconds=0.0))
    with pytest.raises(SeedMidiError, match=r"^this MIDI file took too long to read$"):
        load_seed_midi(heavy_seed_midi(), SeedLimits(cpu_seconds=0.05))  # spent partway through


def test_the_budget_counts_cpu_time_not_time_spent_waiting_for_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    data = heavy_seed_midi(150_000)
    check_seed_midi(data, SeedLimits(cpu_seconds=60))  # warm: a first read costs more CPU than the rest
    solo = min(check_seed_midi(data, SeedLimits(cpu_seconds=60)) for _ in range(2))
    limits = SeedLimits(cpu_seconds=solo * 4)  # room for a loaded machine's slower CPU seconds
    real_check = seed_mod._Deadline.check
    off_cpu = limits.cpu_seconds + 0.2
    state = {"parked": False}

    def parked_once(self) -> None:  # the thread waits off the CPU for longer than the whole budget
        if not state["parked"]:
            state["parked"] = True
            threading.Event().wait(off_cpu)
        real_check(self)

    monkeypatch.setattr(seed_mod._Deadline, "check", parked_once)
    start = time.perf_counter()
    spent = check_seed_midi(data, limits)
    wall = time.perf_counter() - start
    assert state["parked"] and spent < limits.cpu_seconds < off_cpu <= wall


def test_read_midi_reasons_come_through() -> None:
    # A note-on and its note-off on the same tick passes the scan but leaves no note to read.
    data = one_track(b"\x00\x90\x3c\x50\x00\x80\x3c\x00")
    with pytest.raises(SeedMidiError, match=r"^this file has no melody notes$"):
        read_seed(data)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_events"):
        SeedLimits(max_events=0)
    with pytest.raises(ValueError, match="cpu_seconds"):
        SeedLimits(cpu_seconds=float("nan"))
    with pytest.raises(ValueError, match="max_bars"):
        read_seed(song(0), max_bars=0)


def test_giant_vlq_is_refused_quickly() -> None:
    # ~500 KB of continuation bytes: plain mido shifts an ever-growing int for minutes.
    body = b"\xff" * 500_000 + b"\x00\x90\x3c\x50"
    data = header() + chunk(body)
    start = time.perf_counter()
    with pytest.raises(SeedMidiError, match="damaged"):
        load_seed_midi(data)
    assert time.perf_counter() - start < 1.0


def outcome(data: bytes) -> None:
    """Read ``data``: it must give a lead sheet or a SeedMidiError, in under 3 seconds."""
    start = time.perf_counter()
    try:
        assert isinstance(read_seed(data, max_bars=64), LeadSheet)
    except SeedMidiError as exc:
        assert str(exc)
    assert time.perf_counter() - start < 3.0


FUZZ = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    outcome(data)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes_after_a_header(data: bytes) -> None:
    outcome(header(fmt=1, ntracks=2) + data)


SEED_SONG = song(1)
MUTATION = st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                     st.integers(0, len(SEED_SONG) - 1), st.integers(0, 255))


def mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in mutations:
        where %= max(len(out), 1)
        if op == "flip" and out:
            out[where] ^= 1 << (value % 8)
        elif op == "set" and out:
            out[where] = value
        elif op == "insert":
            out.insert(where, value)
        elif op == "delete" and out:
            del out[where]
        elif op == "truncate":
            del out[where:]
    return bytes(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATION, min_size=1, max_size=4))
def test_fuzz_mutated_file(mutations: list[tuple[str, int, int]]) -> None:
    outcome(mutate(SEED_SONG, mutations))
