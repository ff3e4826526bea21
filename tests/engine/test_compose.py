"""The compose engine end to end, with real FluidSynth and ffmpeg, checked as a listener would."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
from pydub import AudioSegment

from engine.band.arrange import FINAL_HOLD_S
from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.settings import Settings
from tests.helpers import REPO, combo_midi, run_chorus, tune_melody


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer(Settings.from_env(environ={}, dotenv=None))


def build(length: str = "30s", **kw) -> ComposeRequest:
    return ComposeRequest.build("jazz", length, Settings(), ["jazz"], **kw)


@pytest.fixture(scope="module")
def clip(composer: Composer, tiny_checkpoint: Path):
    return composer.compose(build(seed=42, tempo=160), checkpoint=tiny_checkpoint)


def strong_beat_onsets(score, tolerance: float = 0.03):  # humanised by at most 0.01 beat
    bar_len = score.meter[0] * 4 / score.meter[1]
    for n in score.part("lead").notes:
        pos = n.start % bar_len
        for strong in (0.0, bar_len / 2):
            if abs(pos - strong) < tolerance or abs(pos - bar_len) < tolerance and strong == 0.0:
                yield n


def chord_at(score, beat: float):
    current = None
    for t, c in score.chords:
        if t <= beat + 0.07:
            current = c
    return current


def test_audio_length_and_not_silent(clip) -> None:
    seg = AudioSegment.from_file(io.BytesIO(clip.audio), format="ogg")
    bar_s = 4 * 60 / 160
    # within one bar, plus the final chord held past its bar and the synth's 2 s release tail
    assert abs(seg.duration_seconds - 30) <= bar_s + FINAL_HOLD_S + 2.0
    assert abs(clip.summary["seconds"] - seg.duration_seconds) < 0.2
    samples = np.array(seg.get_array_of_samples(), dtype=float)
    assert np.sqrt(np.mean(samples**2)) > 500  # clearly audible, not silence


def test_midi_has_the_band_and_meta(clip) -> None:
    mid = mido.MidiFile(file=io.BytesIO(clip.midi))
    assert mid.type == 1
    names = [t.name for t in mid.tracks]
    assert names[1:] == ["Lead", "Comping", "Bass", "Drums"]
    programs = {m.channel: m.program for t in mid.tracks for m in t if m.type == "program_change"}
    assert programs == {0: 26, 1: 0, 2: 32}
    metas = {m.type for m in mid.tracks[0]}
    assert {"set_tempo", "time_signature", "key_signature"} <= metas
    drum_notes = {m.note for m in mid.tracks[4] if m.type == "note_on"}
    assert {51, 44} <= drum_notes and all(m.channel == 9 for m in mid.tracks[4] if m.type == "note_on")
    assert clip.picture[:8] == b"\x89PNG\r\n\x1a\n"


def test_strong_beat_melody_notes_fit_the_chords(clip) -> None:
    score = clip.score
    notes = list(strong_beat_onsets(score))
    assert len(notes) >= 8
    good = 0
    for n in notes:
        chord = chord_at(score, n.start)
        good += chord is None or chord.is_nc or n.pitch % 12 in (chord.chord_pcs | chord.scale_pcs)
    assert good / len(notes) >= 0.95


def test_walking_bass_plays_a_chord_tone_on_every_downbeat(clip) -> None:
    score = clip.score
    bass = score.part("bass").notes
    for start, _ in score.bars:
        hits = [n for n in bass if abs(n.start - start) < 0.05]
        assert hits, f"no bass note at beat {start}"
        chord = chord_at(score, start)
        assert hits[0].pitch % 12 in chord.chord_pcs


def test_ends_on_the_tonic_with_a_held_chord(clip) -> None:
    score = clip.score
    last_start, last_len = score.bars[-1]
    tonic = score.chords[-1][1]
    assert score.chords[-1][0] == last_start
    final = max(score.part("lead").notes, key=lambda n: n.start)
    assert final.pitch % 12 == tonic.root and final.duration >= last_len * 0.8
    assert clip.summary["key"].split()[0] in ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@pytest.mark.parametrize("seed", [2000, 2005])  # the two shortest-ringing endings before the roll
def test_the_final_chord_rings_at_least_two_and_a_half_seconds_in_the_audio(composer: Composer, seed: int) -> None:
    """From the final chord's onset, the band's level stays within 20 dB of its level 0.2-0.5 s in
    for >= 2.5 s (shipped jazz checkpoint; bench/mix.py measures the same over 10 clips)."""
    result = composer.compose(build(seed=seed), checkpoint=REPO / "checkpoints" / "jazz")
    seg = AudioSegment.from_file(io.BytesIO(result.audio), format="ogg")
    x = np.array(seg.get_array_of_samples(), dtype=float).reshape(-1, seg.channels).mean(axis=1)
    hop = seg.frame_rate // 100  # 10 ms frames
    onset = int(result.score.bars[-1][0] * 60 / result.score.tempo * seg.frame_rate)
    frames = x[onset: onset + (len(x) - onset) // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-9)
    below = np.nonzero(level < np.median(level[20:50]) - 20)[0]
    assert (below[0] if below.size else len(level)) / 100 >= 2.5


def test_fixed_seed_reproduces_the_midi_and_the_audio_bytes(composer: Composer, tiny_checkpoint: Path, clip) -> None:
    again = composer.compose(build(seed=42, tempo=160), checkpoint=tiny_checkpoint)
    assert again.midi == clip.midi
    # one synth thread (the default) and ffmpeg's bitexact flags: the same clip, byte for byte
    assert again.audio == clip.audio
    other = composer.compose(build(seed=43, tempo=160), checkpoint=tiny_checkpoint)
    assert other.midi != clip.midi


def test_given_changes_are_played(composer: Composer, tiny_checkpoint: Path) -> None:
    out = composer.compose(build("12s", seed=1, tempo=120, changes="Dm7 G7 Cmaj7 Cmaj7"), checkpoint=tiny_checkpoint)
    names = [c.name for _, c in out.score.chords]
    assert names[:3] == ["Dm7", "G7", "Cmaj7"]


def test_seed_continuation_keeps_the_seed_bars_and_tempo(composer: Composer, tiny_checkpoint: Path) -> None:
    out = composer.compose(build("20s", seed=5, seed_midi=combo_midi()), checkpoint=tiny_checkpoint)
    assert out.summary["tempo"] == 120.0
    assert out.summary["continuation_starts_bar"] == 5
    lead = sorted(out.score.part("lead").notes, key=lambda n: n.start)
    seed_pitches = [p for _, _, p in tune_melody()]
    assert [n.pitch for n in lead[: len(seed_pitches)]] == seed_pitches
    cont_bars = len(out.score.bars) - 4
    assert abs(cont_bars * 2.0 - 20) <= 2.0  # 20 s of continuation at 120 bpm, within one bar


def test_parts_can_be_switched_off(composer: Composer, tiny_checkpoint: Path) -> None:
    out = composer.compose(build("8s", seed=2, parts={"lead", "bass"}), checkpoint=tiny_checkpoint)
    assert [p.name for p in out.score.parts] == ["lead", "bass"]


def flac_pcm(audio: bytes) -> np.ndarray:
    """A FLAC clip's samples as (frames, 2) float, full scale 1.0."""
    seg = AudioSegment.from_file(io.BytesIO(audio), format="flac")
    return np.array(seg.get_array_of_samples(), dtype=float).reshape(-1, 2) / 32768.0


def test_a_part_left_out_leaves_the_others_as_in_the_full_clip(composer: Composer, tiny_checkpoint: Path) -> None:
    """The clip is normalised as a whole: ``--no drums`` gives the full clip's other parts at
    the same level, and the drums alone are the rest of it. The three MIDI files come from
    compose; they are rendered and encoded here the way compose does (`encode(..., band=...)`),
    each from one render, so the check does not depend on rendering the same MIDI twice."""
    from engine.media.encode import encode
    from engine.media.render import get_renderer

    s = composer.settings
    renderer = get_renderer(s.soundfont, s.sample_rate, s.synth_threads)
    midis = [composer.compose(build("8s", seed=5, audio_format="flac", parts=parts), checkpoint=tiny_checkpoint).midi
             for parts in (None, {"lead", "comping", "bass"}, {"drums"})]
    band, rest, drum_pcm = (renderer.render(m) for m in midis)
    full = flac_pcm(encode(band, renderer.sample_rate, "flac"))
    no_drums = flac_pcm(encode(rest, renderer.sample_rate, "flac", band=band))
    drums = flac_pcm(encode(drum_pcm, renderer.sample_rate, "flac", band=band))
    assert full.shape == no_drums.shape == drums.shape

    def db(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(x ** 2) + 1e-20))

    assert abs(db(full - drums) - db(no_drums)) < 0.5  # the band without drums: as loud as in the full clip
    assert abs(db(full - no_drums) - db(drums)) < 0.5  # the drums: as loud as in the full clip
    # and the stems add up to the clip (to -25 dB: FluidSynth's shared reverb and chorus are not exactly additive)
    assert db(no_drums + drums - full) < db(full) - 25


def chorus(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_compose_json(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import json

    out = chorus("compose", "jazz", "10s", "--checkpoint", str(tiny_checkpoint), "--seed", "3", "--out", str(tmp_path),
                 "--json", "--sheet")
    assert out.returncode == 0, out.stderr
    s = json.loads(out.stdout)
    for key in ("audio", "midi", "picture", "seconds", "bars", "tempo", "style", "checkpoint", "seed", "changes", "timings"):
        assert key in s
    assert Path(s["audio"]).stat().st_size > 1000 and "total" in s["timings"]
    # --sheet: the lead sheet beside the clip
    assert {Path(s[k]).name for k in ("musicxml", "pdf", "sheet")} == {"clip.musicxml", "clip.pdf", "clip-sheet.png"}
    assert Path(s["pdf"]).read_bytes().startswith(b"%PDF") and Path(s["sheet"]).read_bytes().startswith(b"\x89PNG")
    assert b"<score-partwise" in Path(s["musicxml"]).read_bytes() and "sheet" in s["timings"]


@pytest.mark.parametrize("args, message", [
    (["jazz", "0s"], "allowed 5-180 s"),
    (["jazz", "10h"], "allowed 5-180 s"),
    (["jazz", "abc"], "not a duration"),
    (["bebop", "30s"], "no checkpoint for style 'bebop'"),
    (["jazz", "30s", "--tempo", "5"], "tempo 5 bpm is out of range"),
    (["jazz", "30s", "--changes", "Dm7 Qx7"], "'Qx7'"),
    (["jazz", "30s", "--seed-midi", "PNG"], "not a MIDI file"),
    (["jazz", "30s", "--seed-midi", "TRUNC"], "damaged or truncated"),
])
def test_cli_bad_input_gets_one_line_and_exit_2(tiny_checkpoint: Path, tmp_path: Path, args, message) -> None:
    png = tmp_path / "pic.mid"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    trunc = tmp_path / "trunc.mid"
    trunc.write_bytes(combo_midi()[:120])
    args = [{"PNG": str(png), "TRUNC": str(trunc)}.get(a, a) for a in args]
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    (ck / "jazz").symlink_to(tiny_checkpoint)
    out = run_chorus("compose", *args, "--out", str(tmp_path / "o"), cwd=REPO, env={"CHORUS_CHECKPOINTS_DIR": str(ck)})
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr


def test_a_batch_composes_each_job_as_alone_and_keeps_going_past_a_bad_one(composer: Composer, tiny_checkpoint: Path) -> None:
    from engine.formats.seed import SeedMidiError

    jobs = [(build("8s", seed=s, tempo=150), tiny_checkpoint, None) for s in (21, 22)]
    jobs.insert(1, (build("8s", seed=5, seed_midi=b"MThd" + b"\0" * 30), tiny_checkpoint, None))
    out = list(composer.compose_many(jobs))
    assert isinstance(out[1], SeedMidiError)
    for result, seed in ((out[0], 21), (out[2], 22)):
        alone = composer.compose(build("8s", seed=seed, tempo=150), checkpoint=tiny_checkpoint)
        assert result.midi == alone.midi
