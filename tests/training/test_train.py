from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models.checkpoint import load_checkpoint
from engine.music import grammar as g
from tests.helpers import REPO
from training.fit.ngram import NGram
from training.fit.train import preset, train


def test_chorus_train_tiny_prints_progress_and_writes_a_checkpoint(fixture_dataset: Path, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "bot.cli", "train", "--preset", "tiny", "--data", str(fixture_dataset),
                          "--out", str(tmp_path / "ck"), "--device", "cpu"],
                         capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr
    assert "best validation loss so far, checkpoint saved" in out.stdout
    assert load_checkpoint(tmp_path / "ck").meta["training"]["epochs"] == 3


def test_resume_continues_exactly_where_it_stopped(fixture_dataset: Path, tmp_path: Path) -> None:
    cfg = preset("tiny", max_epochs=4)
    straight = train(cfg, fixture_dataset, tmp_path / "straight", device="cpu", say=lambda _: None)

    calls = {"n": 0}

    def interrupt(done: int, total: int, loss: float, tps: float) -> None:
        calls["n"] += done == total
        if calls["n"] == 2:  # the end of the second epoch's training, before it is saved
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, fixture_dataset, tmp_path / "cut", device="cpu", say=lambda _: None, progress=interrupt)
    assert json.loads((tmp_path / "cut" / "train_state" / "state.json").read_text())["epoch"] == 1
    resumed = train(cfg, fixture_dataset, tmp_path / "cut2", resume=tmp_path / "cut", device="cpu", say=lambda _: None)
    assert resumed["metrics"]["valid_nll"] == pytest.approx(straight["metrics"]["valid_nll"], abs=1e-6)
    assert [h["valid_nll"] for h in resumed["training"]["history"]] == pytest.approx(
        [h["valid_nll"] for h in straight["training"]["history"]], abs=1e-6)
    assert resumed["content_hash"] == straight["content_hash"]


def test_ngram_is_a_distribution_and_round_trips() -> None:
    seqs = [[1, 5, 6, 7, 5, 6, 8, 2], [1, 5, 6, 7, 7, 2]]
    model = NGram(3, 10).fit(seqs)
    for ctx in [(), (5,), (5, 6), (9, 9)]:
        assert sum(model.prob(ctx, t) for t in range(10)) == pytest.approx(1.0)
    assert model.prob((5, 6), 7) > model.prob((5, 6), 3)
    again = NGram.from_tensors(model.to_tensors())
    assert again.nll(seqs) == pytest.approx(model.nll(seqs))
    total, n = model.nll([[1, 9, 9, 9]])
    assert math.isfinite(total) and n == 3


def test_ngram_baseline_is_stored_in_the_checkpoint(tiny_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_checkpoint)
    ngram = NGram.from_tensors(ck.extra)
    assert ngram.vocab_size == len(g.VOCAB) and ngram.order == ck.meta["metrics"]["ngram_order"]


@pytest.mark.parametrize("style", ["jazz", "folk", "bach"])
def test_the_shipped_checkpoints_were_trained_with_their_styles_preset(style: str) -> None:
    from engine.band.styles import get_style
    from training.fit.train import PRESETS

    meta = load_checkpoint(REPO / "checkpoints" / style).meta
    assert meta["style"] == style
    expected = PRESETS[style].to_dict()
    expected.update(meta["training"].get("overrides", {}))  # e.g. a warm start's lr and init_from, recorded
    if meta.get("conditioning"):  # the era and player vocabularies size the model
        expected["model"].update(n_eras=len(meta["conditioning"]["eras"]), n_players=len(meta["conditioning"]["players"]))
    import dataclasses

    config = meta["training"]["config"]
    # fields added to the training config after a checkpoint was trained are absent from it: the
    # preset must leave them at their defaults (what that training did)
    defaults = {f.name: f.default for f in dataclasses.fields(PRESETS[style]) if f.default is not dataclasses.MISSING}
    later = {k for k in expected if k not in config}
    assert all(k in defaults and expected[k] == defaults[k] for k in later), later
    expected = {k: v for k, v in expected.items() if k not in later}
    from engine.models.lstm import ModelConfig

    model_defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    later_model = {k for k in expected["model"] if k not in config["model"]}
    assert all(expected["model"][k] == model_defaults.get(k, object()) for k in later_model), later_model
    expected["model"] = {k: v for k, v in expected["model"].items() if k not in later_model}
    assert config == json.loads(json.dumps(expected))
    assert meta["sampling"] == get_style(style).sampling.to_meta()
