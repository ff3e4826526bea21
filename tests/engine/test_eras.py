"""Era and player conditioning: the option, its checks, the model inputs, and clips for each era and for metheny."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest, RequestError
from engine.models.checkpoint import load_checkpoint
from engine.models.conditioning import ERA_CHOICES, ERAS, cond_ids
from engine.settings import Settings
from tests.helpers import REPO, run_chorus

SHIPPED = REPO / "checkpoints"


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer(Settings.from_env(environ={}, dotenv=None))


def test_era_vocabulary_is_the_harmony_models() -> None:
    from engine.models.harmony import ERAS as HARMONY_ERAS

    assert ERAS == HARMONY_ERAS
    assert all(e.upper() in ERAS for e in ERA_CHOICES)


def test_a_bad_era_gets_one_line_listing_the_choices() -> None:
    with pytest.raises(RequestError) as exc:
        ComposeRequest.build("jazz", "30s", Settings(), ["jazz"], era="rock")
    msg = str(exc.value)
    assert "\n" not in msg and "'rock'" in msg and all(e in msg for e in ERA_CHOICES)


def test_cli_bad_era_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = run_chorus("compose", "jazz", "10s", "--era", "grunge", "--out", str(tmp_path), cwd=REPO)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "swing, bebop, cool, hardbop, postbop, fusion" in out.stderr


def test_era_travels_in_the_payload() -> None:
    req = ComposeRequest.build("jazz", "30s", Settings(), ["jazz"], era="BeBop")
    assert req.era == "bebop"
    assert ComposeRequest.from_payload(req.to_payload()) == req


def test_cond_ids_name_the_checkpoints_vocabulary() -> None:
    meta = {"conditioning": {"eras": list(ERAS), "players": ["", "Pat Metheny"]}}
    assert cond_ids(meta, "bebop", "Pat Metheny") == (ERAS.index("BEBOP"), 1)
    assert cond_ids(meta, None, "Nobody") == (0, 0)
    assert cond_ids({}, "bebop", "Pat Metheny") == (0, 0)


def test_conditioned_model_listens_to_the_era(tiny_conditioned_checkpoint: Path) -> None:
    ck = load_checkpoint(tiny_conditioned_checkpoint)
    assert ck.model.config.n_eras == len(ERAS) and "Pat Metheny" in ck.meta["conditioning"]["players"]
    toks = torch.zeros((1, 5), dtype=torch.long)
    feats = torch.zeros((1, 5, 3), dtype=torch.long)
    plain, _ = ck.model(toks, feats)
    bebop, _ = ck.model(toks, feats, cond=torch.tensor([[ERAS.index("BEBOP"), 0]]))
    assert torch.equal(plain, ck.model(toks, feats, cond=torch.zeros((1, 2), dtype=torch.long))[0])
    assert not torch.allclose(plain, bebop)


def test_warm_start_keeps_the_old_model_exactly(tiny_checkpoint: Path) -> None:
    from dataclasses import replace

    from engine.models.lstm import ChorusLSTM
    from training.fit.train import warm_start

    old = load_checkpoint(tiny_checkpoint).model
    new = ChorusLSTM(replace(old.config, n_eras=len(ERAS), n_players=3)).eval()
    warm_start(new, tiny_checkpoint)
    toks = torch.randint(0, 50, (2, 7))
    feats = torch.zeros((2, 7, 3), dtype=torch.long)
    assert torch.allclose(old(toks, feats)[0], new(toks, feats, cond=torch.tensor([[3, 2], [1, 1]]))[0], atol=1e-6)


def test_each_era_composes_with_the_tiny_conditioned_model(composer: Composer, tiny_conditioned_checkpoint: Path) -> None:
    for i, era in enumerate(ERA_CHOICES):
        req = ComposeRequest.build("jazz", "6s", Settings(), ["jazz"], seed=i, era=era, parts={"lead", "bass"})
        result = composer.compose(req, checkpoint=tiny_conditioned_checkpoint)
        assert result.summary["era"] == era and result.summary["seconds"] > 5


def test_an_era_asked_of_a_style_without_eras_is_refused(composer: Composer, tiny_checkpoint: Path) -> None:
    req = ComposeRequest.build("jazz", "6s", Settings(), ["jazz"], seed=1, era="cool")
    with pytest.raises(RequestError, match="has no eras"):
        composer.compose(req, checkpoint=tiny_checkpoint)


@pytest.mark.parametrize("style, era", [("jazz", e) for e in ERA_CHOICES] + [("metheny", None), ("metheny", "fusion")])
def test_the_shipped_checkpoints_compose_each_era_and_metheny(composer: Composer, style: str, era: str | None) -> None:
    if not (SHIPPED / style / "meta.json").is_file() or not load_checkpoint(SHIPPED / style).meta.get("conditioning"):
        pytest.fail(f"checkpoints/{style} is missing or not conditioned on eras")
    req = ComposeRequest.build(style, "8s", Settings(), [style], seed=7, era=era)
    result = composer.compose(req, checkpoint=SHIPPED / style)
    s = result.summary
    assert s["seconds"] > 7 and s["bars"] >= 3
    assert s["era"] == (era or ("postbop" if style == "metheny" else None))
    if style == "metheny":
        assert s["player"] == "Pat Metheny" and 120 <= s["tempo"] <= 190
        assert result.score.part("lead").program == 27
