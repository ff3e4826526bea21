"""Song forms: each form's skeleton holds in the changes the shipped harmony model writes, keys
and named progressions parse, and the melody repeats its strains and restates its motifs."""
from __future__ import annotations

import pytest

from engine.compose.song import plan_song, transpose_text
from engine.music.chords import Chord
from engine.music.forms import FORM_CHOICES, FormError, get_form, parse_key_name, progression
from engine.music.leadsheet import Note
from engine.music.motif import MelodicForm, shape_melody
from tests.helpers import REPO, run_chorus

F, BB, C, G = 5, 10, 0, 7
SEEDS = range(6)


@pytest.fixture(scope="module")
def jazz():
    from engine.models.checkpoint import load_checkpoint

    return load_checkpoint(REPO / "checkpoints" / "jazz")


@pytest.fixture(scope="module")
def folk():
    from engine.models.checkpoint import load_checkpoint

    return load_checkpoint(REPO / "checkpoints" / "folk")


def chorus(ck, form: str, key: str, seed: int, meter=(4, 4)):
    import random

    plan = plan_song(ck.harmony, ck.meta["harmony"], random.Random(seed), seed, meter, (form,),
                     form=form, key=parse_key_name(key))
    return plan, [[c.root for c in bar] for bar in plan.chorus]


def last(bar: list[int]) -> int:
    return bar[-1]


def test_shipped_checkpoints_have_a_harmony_model(jazz, folk):
    assert jazz.harmony is not None and folk.harmony is not None
    assert jazz.meta["harmony"]["key_weights"] and folk.meta["harmony"]["key_weights"]


@pytest.mark.parametrize("seed", SEEDS)
def test_blues_in_f_has_the_blues_skeleton(jazz, seed):
    plan, roots = chorus(jazz, "blues", "F", seed)
    assert plan.form == "blues" and len(roots) == 12 and plan.key_name == "F major"
    assert roots[0][0] == F and roots[4][0] == BB and roots[6][0] == F and roots[10][0] == F
    assert roots[8][0] in (G, C) and roots[9][0] == C  # a V, or ii-V, of F in bars 9-10
    assert last(roots[11]) in ((F + 7) % 12, (F + 1) % 12, (F + 2) % 12)  # turnaround back to the top


@pytest.mark.parametrize("seed", SEEDS)
def test_aaba_repeats_its_a_section_and_turns_around(jazz, seed):
    plan, roots = chorus(jazz, "aaba", "Bb", seed)
    bars = plan.chorus
    assert len(bars) == 32 and roots[0][0] == BB
    assert bars[8:14] == bars[0:6] and bars[24:30] == bars[0:6]  # A2 and A3 share A1's first 6 bars
    assert roots[15][0] == BB  # A2's second ending lands on the tonic before the bridge
    assert all(last(roots[b]) in (5, 11, 0) for b in (7, 23, 31))  # V, bII or ii of Bb back to A (and the top)


@pytest.mark.parametrize("seed", SEEDS)
def test_abac_and_16_bar_forms(jazz, seed):
    plan, roots = chorus(jazz, "abac", "Eb", seed)
    assert len(plan.chorus) == 32 and plan.chorus[16:22] == plan.chorus[0:6] and roots[0][0] == 3
    assert roots[30][0] == 3 and last(roots[31]) in (10, 4, 5)
    plan, roots = chorus(jazz, "16", "C", seed)
    assert len(plan.chorus) == 16 and roots[0][0] == C and roots[7][0] in (G, 2) and roots[14][0] == C
    assert last(roots[15]) in (G, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_free_form_starts_on_the_tonic_and_folk_plays_aabb(jazz, folk, seed):
    plan, roots = chorus(jazz, "free", "A minor", seed)
    assert len(plan.chorus) == 16 and roots[0][0] == 9 and plan.mode == "minor"
    plan, roots = chorus(folk, "aabb", "D", seed, meter=(6, 8))
    bars = plan.chorus
    assert len(bars) == 32 and bars[8:15] == bars[0:7] and bars[24:31] == bars[16:23]
    assert roots[15][0] == 2 and roots[31][0] == 2  # each strain's second ending on the tonic


def test_a_minor_key_with_blues_gives_the_minor_blues(jazz):
    plan, roots = chorus(jazz, "blues", "C minor", 3)
    assert plan.form == "minor blues" and roots[0][0] == C and roots[4][0] == F


def test_named_progressions_are_transposed_to_the_key():
    import random

    plan = plan_song(None, {}, random.Random(0), 0, (4, 4), ("aaba",), changes_text="blues", key=(BB, "major"))
    assert [c.token for c in plan.chorus[0]] == ["Bb7"] and [c.token for c in plan.chorus[4]] == ["Eb7"]
    assert progression("II-V-I") and progression("Minor  Blues")[0] == "minor" and progression("bossa") is None
    assert transpose_text("Dm7 G7 | Cmaj7", 2)[1] == (Chord(2, "maj7"),)


@pytest.mark.parametrize("text, expected", [("Bb", (10, "major")), ("F minor", (5, "minor")),
                                            ("Ebm", (3, "minor")), ("f# min", (6, "minor"))])
def test_key_names(text, expected):
    assert parse_key_name(text) == expected


def test_bad_form_and_key_get_one_line_listing_the_choices():
    with pytest.raises(FormError, match="choose from blues, aaba, abac, 16"):
        get_form("polka")
    with pytest.raises(FormError, match="not a key like"):
        parse_key_name("H major")
    assert set(FORM_CHOICES) >= {"blues", "aaba", "abac", "16", "free"}


def _line(bars: int, start: float = 0.0, step: int = 1) -> list[Note]:
    """Eighth notes climbing by ``step`` semitones, 8 to a bar."""
    return [Note(start + i * 0.5, 0.5, 60 + (i * step) % 12) for i in range(bars * 8)]


def test_strains_repeat_bar_for_bar_except_the_second_ending():
    melody = _line(16, step=1)[:64] + _line(8, 32.0, step=5)
    sections = (("A", 0, 0, 8), ("A", 1, 8, 8))
    out = shape_melody(melody, sections, 16, 16, 4.0, MelodicForm("strains", ending_bars=1), seed=0)
    first = [(n.onset, n.pitch) for n in out if n.onset < 28]
    again = [(n.onset - 32, n.pitch) for n in out if 32 <= n.onset < 60]
    assert first == again  # bars 9-15 replay bars 1-7
    assert [n.pitch for n in out if n.onset >= 60] == [n.pitch for n in melody if n.onset >= 60]


def test_motifs_are_restated_at_repeated_sections_only():
    melody = [Note(i * 0.5, 0.5, 60 + (i * 7) % 23) for i in range(32 * 8)]
    sections = (("A", 0, 0, 8), ("A", 1, 8, 8), ("B", 0, 16, 8), ("A", 2, 24, 8))
    out = shape_melody(melody, sections, 32, 32, 4.0, MelodicForm("motifs", restate_share=1.0), seed=1)
    head = [n.pitch for n in out if n.onset < 3]
    assert [n.pitch for n in out if 32 <= n.onset < 35][:4] == head[:4]
    assert [n.pitch for n in out if 96 <= n.onset < 99][:4] == head[:4]
    assert [n.pitch for n in out if 64 <= n.onset < 68] == [n.pitch for n in melody if 64 <= n.onset < 68]


def _cli(*args: str):
    return run_chorus("compose", *args, cwd=REPO)  # in-process; test_compose.py runs the real command


def test_compose_blues_in_f_from_the_command_line(tmp_path):
    import json

    from training.evaluation.harmony_metrics import parse_changes

    out = _cli("jazz", "40s", "--form", "blues", "--key", "F", "--tempo", "160", "--seed", "7", "--json",
               "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["form"] == "blues" and summary["key"] == "F major"
    bars = parse_changes(summary["changes"])
    roots = [[c.root for c in bar] for bar in bars]
    assert roots[0][0] == F and roots[4][0] == BB and roots[6][0] == F and roots[9][0] == C and roots[10][0] == F
    assert bars[12] == bars[0] and bars[16] == bars[4]  # back to the top: the second chorus is the first again


@pytest.mark.parametrize("args, message", [
    (("--form", "polka"), "unknown form 'polka': choose from blues, aaba, abac, 16"),
    (("--key", "H"), "key 'H' is not a key like C, Bb, F# minor or Ebm"),
    (("--changes", "bluez"), "or name a progression: blues, minor blues, rhythm, ii-V-I"),
])
def test_bad_form_key_and_progression_get_one_line(tmp_path, args, message):
    out = _cli("jazz", "10s", *args, "--out", str(tmp_path))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr


def test_named_progression_from_the_command_line(tmp_path):
    import json

    out = _cli("jazz", "20s", "--changes", "rhythm", "--key", "Bb", "--seed", "1", "--tempo", "200", "--json",
               "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["changes"].startswith("Bb6 G7 | Cm7 F7") and summary["key"] == "Bb major"


def test_form_and_key_travel_in_the_request_payload():
    from engine.compose.request import ComposeRequest
    from engine.settings import Settings

    req = ComposeRequest.build("jazz", "30s", Settings(), ["jazz"], form="AABA", key="eb minor", changes="blues")
    assert (req.form, req.key, req.key_pc, req.changes, req.changes_text) == ("aaba", "Eb minor", (3, "minor"), None, "blues")
    assert ComposeRequest.from_payload(req.to_payload()) == req


def test_bar_chords_keep_the_fewest_equal_parts():
    from engine.models.harmony import bar_chords

    c, g, am = Chord(0, "maj"), Chord(7, "maj"), Chord(9, "min")
    assert bar_chords([c, c, c, c]) == (c,)
    assert bar_chords([c, c, g, g]) == (c, g)
    assert bar_chords([c, g, g, g]) == (c, g, g, g)
    assert bar_chords([c, am, g]) == (c, am, g)
    assert bar_chords([c, c]) == (c,)


@pytest.mark.parametrize("meter, beats", [((4, 4), 4), ((3, 4), 3)])
def test_a_per_beat_harmony_model_writes_a_chord_on_any_beat_and_keeps_the_anchors(meter, beats):
    """A harmony model with ``slots`` 4 (the chorales') steps once per beat: bars of 3/4 and 4/4
    get their beats' chords in equal parts, and each phrase's anchored half bar (the cadence's
    goal, on I or V) falls on the beat where the second half starts."""
    import random

    import torch

    from engine.models.harmony import HarmonyConfig
    from engine.models.harmony_net import HarmonyLSTM

    torch.manual_seed(0)
    model = HarmonyLSTM(HarmonyConfig(emb=8, hidden=8, layers=1, slots=4)).eval()
    for seed in range(4):
        plan = plan_song(model, {}, random.Random(seed), seed, meter, ("chorale",), key=(7, "major"))
        assert len(plan.chorus) == 16
        assert all(beats % len(bar) == 0 for bar in plan.chorus)
        steps = [bar[b * len(bar) // beats] for bar in plan.chorus for b in range(beats)]
        for end in range(1, 16, 2):  # each two-bar phrase's second half: I or V (the last on I)
            goal = steps[end * beats + beats // 2]
            assert (goal.root - 7) % 12 in ((0,) if end == 15 else (0, 7, 9, 4))
    # written over more steps, the chords change more often than a half-bar model could
    plan = plan_song(model, {}, random.Random(1), 1, meter, ("chorale",), key=(7, "major"))
    assert any(len(bar) > 2 for bar in plan.chorus)
