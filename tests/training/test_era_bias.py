"""The era bias (training/fit/era_bias.py): fitted on a frozen model, it moves era requests only."""
from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.errors import ConfigError
from engine.models.checkpoint import load_checkpoint
from engine.models.lstm import ModelConfig
from engine.models.sample import SampleRequest, sample
from training.fit.era_bias import EraBiasConfig, fit_bias, fit_into


def test_the_bias_learns_each_eras_token_frequencies() -> None:
    # a frozen head that knows nothing (zero logits): the bias must learn that era 1 plays token 3
    # and era 2 token 5, and leave row 0 ("no era") at zero
    head = torch.nn.Linear(4, 8)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    era = torch.tensor([1] * 50 + [2] * 50)
    y = torch.tensor([3] * 45 + [0] * 5 + [5] * 45 + [0] * 5)
    bias = fit_bias(head, torch.randn(100, 4), y, era, 3, EraBiasConfig(steps=200))
    assert int(bias[1].argmax()) == 3 and int(bias[2].argmax()) == 5
    assert torch.all(bias[0] == 0)


def test_a_checkpoint_with_the_bias_changes_era_requests_and_nothing_else(
        tiny_conditioned_checkpoint: Path, labelled_dataset: Path, tmp_path: Path) -> None:
    before = load_checkpoint(tiny_conditioned_checkpoint)
    target = tmp_path / "ck"
    shutil.copytree(tiny_conditioned_checkpoint, target)
    report = fit_into(target, labelled_dataset, EraBiasConfig(steps=60, guidance=3.0), say=lambda _: None)
    assert report["train_nll"] < report["train_nll_without"]
    after = load_checkpoint(target)
    assert after.model.config.era_bias and after.meta["sampling"]["guidance"] == 3.0
    assert after.meta["training"]["era_bias"]["config"]["steps"] == 60
    assert after.harmony is None or after.meta["harmony"] == before.meta["harmony"]

    plain = [SampleRequest(bars=8, seed=s) for s in (1, 2)]
    assert sample(before.model, plain) == sample(after.model, plain)  # no era: the same clip, token for token
    era = [SampleRequest(bars=8, seed=s, era=2, guidance=3.0) for s in (1, 2, 3, 4)]
    assert sample(before.model, era) != sample(after.model, era)


def test_an_era_bias_needs_eras() -> None:
    with pytest.raises(ConfigError, match="era_bias"):
        replace(ModelConfig(), era_bias=True)
    with pytest.raises(ConfigError, match="era_bias"):
        ModelConfig(n_eras=3, era_bias="yes")
