"""Rendering and encoding with the real FluidSynth, SoundFont, ffmpeg and ffprobe (no mocks)."""
from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import mido
import numpy as np
import pytest

from engine.errors import EngineError, RenderError, Stopped
from engine.media.encode import FORMATS, PEAK_CEILING_DBFS, TARGET_LUFS, encode, integrated_lufs
from engine.media.probe import duration_s, probe
from engine.media.render import Renderer, get_renderer
from engine.settings import Settings
from tests.helpers import REPO, midi_bytes

SOUNDFONT = Settings().soundfont
RATE = 44100
TAIL_S = 1.0
DISCORD_LIMIT = 10 * 1024 * 1024  # bytes

# 16 beats at 120 bpm = 8 s: piano comping (GM 0), a guitar line (GM 26), drums (channel 10).
SONG_PARTS = [
    {"name": "Piano", "channel": 0, "program": 0,
     "notes": [(b, 3.5, p) for b in range(0, 16, 4) for p in (48, 52, 55, 59)]},
    {"name": "Guitar", "channel": 1, "program": 26,
     "notes": [(b * 0.5, 0.45, 60 + (b * 5) % 12) for b in range(32)]},
    {"name": "Drums", "channel": 9,
     "notes": [(b, 0.1, 36 if b % 2 == 0 else 38) for b in range(16)] + [(b + 0.5, 0.1, 42) for b in range(16)]},
]
SONG_LENGTH_S = 8.0


def song() -> bytes:
    return midi_bytes(SONG_PARTS, tempo_bpm=120)


def leaky_song() -> bytes:
    """A song that leaves a synth in a state that would colour the next one: sustain pedal
    down, pitch bent, volume low, other programs, a note never released."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack()
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0))
    for ch in (0, 1):
        tr.append(mido.Message("program_change", channel=ch, program=48 + ch, time=0))
        tr.append(mido.Message("control_change", channel=ch, control=64, value=127, time=0))
        tr.append(mido.Message("control_change", channel=ch, control=7, value=30, time=0))
        tr.append(mido.Message("pitchwheel", channel=ch, pitch=3000, time=0))
    tr.append(mido.Message("note_on", channel=0, note=64, velocity=100, time=0))
    tr.append(mido.Message("note_on", channel=1, note=67, velocity=100, time=240))
    tr.append(mido.Message("note_off", channel=1, note=67, velocity=0, time=480))
    tr.append(mido.Message("note_on", channel=9, note=49, velocity=120, time=0))
    tr.append(mido.MetaMessage("end_of_track", time=960))
    mid.tracks.append(tr)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def tempo_change_song() -> bytes:
    """8 beats at 120 bpm then 8 beats at 60 bpm: 4 s + 8 s = 12 s."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0),
                           mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60), time=8 * 480)])
    notes = mido.MidiTrack([mido.Message("program_change", channel=0, program=0, time=0)])
    for _ in range(16):
        notes.append(mido.Message("note_on", channel=0, note=60, velocity=90, time=0))
        notes.append(mido.Message("note_off", channel=0, note=60, velocity=0, time=480))
    mid.tracks.extend([meta, notes])
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def rms_dbfs(x: np.ndarray) -> float:
    """RMS of float samples (full scale 1.0) in dBFS."""
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def decode(encoded: bytes) -> np.ndarray:
    """Decode any clip with ffmpeg to (frames, 2) float64 in [-1, 1]."""
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "2", "-"],
                         input=encoded, capture_output=True, check=True, timeout=60).stdout
    return np.frombuffer(raw, np.int16).reshape(-1, 2) / 32768.0


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(SOUNDFONT, sample_rate=RATE, tail_s=TAIL_S)


@pytest.fixture(scope="module")
def pcm(renderer: Renderer) -> np.ndarray:
    return renderer.render(song())


@pytest.fixture(scope="module")
def flac(pcm: np.ndarray) -> bytes:
    return encode(pcm, RATE, "flac")


def test_import_does_not_touch_fluidsynth() -> None:
    code = "import sys, engine.media.render; sys.exit('fluidsynth' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


def test_missing_soundfont_is_a_clear_render_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "GM.sf2"
    renderer = Renderer(missing)  # nothing is loaded yet
    with pytest.raises(RenderError, match="SoundFont not found") as info:
        renderer.render(song())
    assert str(missing) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, EngineError)


def test_clip_is_midi_length_plus_tail_and_audible(pcm: np.ndarray) -> None:
    assert pcm.dtype == np.int16 and pcm.ndim == 2 and pcm.shape[1] == 2
    assert abs(pcm.shape[0] / RATE - (SONG_LENGTH_S + TAIL_S)) < 0.1
    audio = pcm / 32768.0
    assert rms_dbfs(audio) > -45.0
    for second in range(int(SONG_LENGTH_S)):  # every second of the song sounds
        assert rms_dbfs(audio[second * RATE:(second + 1) * RATE]) > -50.0, second


def test_tempo_changes_are_followed(renderer: Renderer) -> None:
    frames = renderer.render(tempo_change_song()).shape[0]
    assert abs(frames / RATE - (12.0 + TAIL_S)) < 0.1


def test_same_midi_same_samples_whatever_came_before(renderer: Renderer, pcm: np.ndarray) -> None:
    other = renderer.render(leaky_song())
    assert not np.array_equal(other[: pcm.shape[0]], pcm[: other.shape[0]])
    assert np.array_equal(renderer.render(song()), pcm)
    renderer.render(tempo_change_song())
    assert np.array_equal(renderer.render(song()), pcm)


@pytest.mark.parametrize(("fmt", "codec"), [("ogg", "vorbis"), ("mp3", "mp3"), ("flac", "flac")])
def test_encoded_clip_has_the_codec_and_the_length(pcm: np.ndarray, fmt: str, codec: str) -> None:
    clip = encode(pcm, RATE, fmt)
    info = probe(clip, fmt)
    assert info.codec == codec and info.channels == 2 and info.sample_rate == RATE
    assert abs(duration_s(clip, fmt) - pcm.shape[0] / RATE) < 0.15


def test_loudness_is_normalised_with_peak_headroom(pcm: np.ndarray, flac: bytes) -> None:
    quiet = encode((pcm // 16).astype(np.int16), RATE, "flac")  # 24 dB quieter in
    for clip in (flac, quiet):
        audio = decode(clip)
        assert abs(integrated_lufs(audio, RATE) - TARGET_LUFS) < 1.0
        assert 20 * np.log10(np.abs(audio).max()) <= PEAK_CEILING_DBFS + 0.01


def test_clip_fades_out(flac: bytes) -> None:
    audio = decode(flac)
    middle = audio[audio.shape[0] // 2 - RATE // 2: audio.shape[0] // 2 + RATE // 2]
    assert rms_dbfs(audio[-RATE // 10:]) < rms_dbfs(middle) - 20.0


def test_longest_clip_fits_discord_as_ogg() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(int(2.3 * RATE)) / RATE
    chunk = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (110, 277, 440, 659, 1760))
    chunk = chunk[:, None] * [0.1, 0.09] + rng.normal(0, 0.05, (t.size, 2))
    pcm = np.resize((chunk * 32767 / np.abs(chunk).max()).astype(np.int16), (180 * RATE, 2))
    clip = encode(pcm, RATE, "ogg")
    assert len(clip) < DISCORD_LIMIT / 2
    assert abs(duration_s(clip, "ogg") - 180.0) < 0.15


def test_unknown_format_names_the_allowed_ones(pcm: np.ndarray) -> None:
    for call in (lambda: encode(pcm, RATE, "wav"), lambda: duration_s(b"", "aac")):
        with pytest.raises(RenderError) as info:
            call()
        assert all(fmt in str(info.value) for fmt in FORMATS)


def test_bad_input_is_a_render_error(renderer: Renderer) -> None:
    with pytest.raises(RenderError, match="MIDI could not be read"):
        renderer.render(b"MThd not really a midi file")
    with pytest.raises(RenderError, match="int16"):
        encode(np.zeros((100, 2), np.float32), RATE)


def test_the_drums_render_apart_and_the_samples_do_not_depend_on_the_threads(pcm: np.ndarray) -> None:
    """A song's drums play on a synth of their own beside the rest of the band (`_groups`); with two
    threads the synths run at once, and the samples are exactly the one-thread render's."""
    from engine.media.render import _groups

    two = Renderer(SOUNDFONT, sample_rate=RATE, tail_s=TAIL_S, threads=2)
    events, _ = two._events(song())
    assert [sorted({m.channel for _, m in g}) for g in _groups(events)] == [[0, 1], [9]]
    drums_only = [e for e in events if e[1].channel == 9]
    assert _groups(drums_only) == [drums_only]
    for _ in range(3):
        assert np.array_equal(two.render(song()), pcm)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):  # raised on the helper thread too, and handed back
        two.render(song(), stop=stop)
    assert np.array_equal(two.render(song()), pcm)


def test_one_renderer_per_soundfont_and_rate() -> None:
    assert get_renderer(SOUNDFONT, RATE) is get_renderer(str(SOUNDFONT), RATE)
    assert get_renderer(SOUNDFONT, 48000) is not get_renderer(SOUNDFONT, RATE)


def test_the_k_weighting_filter_is_scipys_bit_for_bit() -> None:
    from scipy.signal import sosfilt

    from engine.media.encode import _k_weighting, _sosfilt_frames, _sosfilt_kernel

    assert _sosfilt_kernel() is not None  # loaded alone: a cold compose does not import scipy.signal
    sos = np.array([np.concatenate([b / a[0], a / a[0]]) for b, a in _k_weighting(44100)]).astype(np.float32)
    audio = np.random.default_rng(3).standard_normal((44100, 2)).astype(np.float32) * 0.3
    assert np.array_equal(_sosfilt_frames(sos, audio), sosfilt(sos, audio, axis=0))


def test_streamed_encoding_writes_what_encode_writes(pcm: np.ndarray) -> None:
    from engine.media.encode import master
    from engine.media.stream import StreamEncoder

    band, pcm = pcm, pcm // 3  # a quieter "stem" of the same length: takes the band's gain
    assert StreamEncoder(RATE, "flac").feed(master(pcm, RATE)) == encode(pcm, RATE, "flac")
    assert StreamEncoder(RATE, "flac").feed(master(pcm, RATE, band=band), chunk_frames=1000) == \
        encode(pcm, RATE, "flac", band=band)


def test_a_stream_encoder_that_fails_or_is_aborted_leaves_nothing_behind() -> None:
    from engine.media.encode import master
    from engine.media.stream import StreamEncoder

    noise = (np.random.default_rng(1).standard_normal((RATE, 2)) * 2000).astype(np.int16)
    bad = StreamEncoder(1_000_000, "ogg")  # libvorbis refuses 1 MHz: ffmpeg exits early
    with pytest.raises(RenderError, match="ffmpeg could not encode ogg"):
        bad.feed(master(noise, RATE))
    aborted = StreamEncoder(RATE, "mp3")
    aborted.abort()
    for enc in (bad, aborted):
        assert enc._proc.returncode is not None and not enc._tmp.exists()
