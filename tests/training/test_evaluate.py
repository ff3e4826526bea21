from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, corpus_dir, run_chorus, write_wjazzd


def test_eval_json_reports_nll_metrics_and_overlaps(tiny_checkpoint: Path, tmp_path: Path) -> None:
    # other recordings than the fixture dataset's, so nothing is left out as seen
    root = write_wjazzd(tmp_path / "held", solos=3)
    index = root / "index.csv"
    index.write_text(index.read_text().replace(",1,Tester", ",101,Tester").replace(",2,Tester", ",102,Tester")
                     .replace(",3,Tester", ",103,Tester"))
    out = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "--checkpoint", str(tiny_checkpoint), "--source",
                          f"wjazzd={root}", "--samples", "3", "--realism", "0", "--json"], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["nll"] > 0 and r["ngram_nll"] > 0 and r["samples"] == 3 and r["grammar_errors"] == 0.0
    for name in ("H1", "H4", "GS", "CPI", "chord_tone_ratio"):
        assert set(r["metrics"][name]) >= {"generated", "reference"}
    assert {"pitch_class_histogram", "note_length_histogram", "pitch_range", "avg_ioi"} <= set(r["oa"])


def test_eval_samples_take_the_references_meters_in_turn(tiny_checkpoint: Path, monkeypatch) -> None:
    """Each generated sample is in the meter of a reference piece in turn, where the style composes
    in it (a chorale style: 4/4 and 3/4), not all in the first piece's meter."""
    from dataclasses import replace

    import pytest

    from engine.models.checkpoint import load_checkpoint
    from training.corpus.bach import VoiceNote, chorale_from_voices
    from training.evaluation import melody as ev

    def chorale(meter: tuple[int, int], title: str):
        beats = meter[0] * 4
        voices = [[VoiceNote(b, 1, p) for b in range(beats)] for p in (67, 62, 59, 43)]
        return chorale_from_voices(voices, meter, 7, "major", title=title)[0]

    sheets = [chorale((3, 4), "waltz"), chorale((4, 4), "common"), chorale((3, 4), "waltz 2")]
    ck = load_checkpoint(tiny_checkpoint)
    seen = []

    def stop(_model, requests):
        seen.extend(r.meter for r in requests)
        raise RuntimeError("sampled")

    monkeypatch.setattr(ev, "sample", stop)
    with pytest.raises(RuntimeError, match="sampled"):
        ev.evaluate(replace(ck, meta={**ck.meta, "style": "bach"}), sheets, ev.EvalSettings(samples=5))
    assert seen == [(3, 4), (4, 4), (3, 4), (3, 4), (4, 4)]
    seen.clear()
    with pytest.raises(RuntimeError, match="sampled"):  # jazz composes only in 4/4
        ev.evaluate(ck, sheets, ev.EvalSettings(samples=2))
    assert seen == [(4, 4), (4, 4)]


def test_eval_decodes_in_the_styles_melody_range_as_a_clip_is(tiny_checkpoint: Path, monkeypatch) -> None:
    """The generated pieces are decoded in the checkpoint's style's range (bach's soprano: 60-81),
    not the decoder's wider default, so their range and pitch figures are the clips'."""
    from dataclasses import replace

    from engine.band.styles import get_style
    from engine.models.checkpoint import load_checkpoint
    from engine.music import grammar as g
    from training.evaluation import melody as ev

    ck = load_checkpoint(tiny_checkpoint)
    ranges = []
    real = g.decode
    monkeypatch.setattr(ev.g, "decode", lambda toks, seed=None, prange=None, **kw: ranges.append(prange)
                        or real(toks, seed=seed, prange=prange, **kw))
    ev.evaluate(replace(ck, meta={**ck.meta, "style": "bach"}), _sheets(), ev.EvalSettings(samples=2))
    assert len(ranges) == 2 and all(r == get_style("bach").sampling.pitch_range for r in ranges)
    assert ev.style_pitch_range(replace(ck, meta={**ck.meta, "style": "no-such-style"})) is None


def _sheets():
    from training.corpus.bach import VoiceNote, chorale_from_voices

    voices = [[VoiceNote(b, 1, p) for b in range(16)] for p in (67, 62, 59, 43)]
    return [chorale_from_voices(voices, (4, 4), 7, "major", title=f"c{i}")[0] for i in range(2)]


@pytest.mark.corpus
def test_eval_reports_realism_in_both_views_with_its_real_vs_real_floor(tmp_path: Path) -> None:
    corpus_dir()
    root = write_wjazzd(tmp_path / "refs", solos=3)
    index = root / "index.csv"  # recordings the shipped checkpoint never saw
    index.write_text(index.read_text().replace(",1,Tester", ",9001,Tester").replace(",2,Tester", ",9002,Tester")
                     .replace(",3,Tester", ",9003,Tester"))
    out = run_chorus("eval", "--checkpoint", str(REPO / "checkpoints" / "jazz"), "--source",
                     f"wjazzd={root}", "--samples", "2", "--clips", "0",
                     "--era-clips", "0", "--realism", "8", "--json", cwd=REPO)
    assert out.returncode == 0, out.stderr
    realism = json.loads(out.stdout)["realism"]
    assert realism["solos"] == 8 and realism["clips"] == 8
    for view in ("composition", "performance"):
        for test in ("real_vs_clips", "real_vs_real"):
            block = realism[view][test]
            assert 0.0 <= block["accuracy"] <= 1.0 and block["differ_most"], (view, test)
