"""Sampling without torch (`engine.models.nplstm`, `engine.models.seeded`): the same draws, tokens, changes and
clips as the torch network gives, a clear refusal of weights that do not fit, and a ``chorus
compose`` on the CPU that never imports torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.models.checkpoint import CheckpointError, load_checkpoint, sha256_file
from engine.models.harmony import write_chorus
from engine.models.sample import SampleRequest, sample
from engine.models.seeded import Uniform
from engine.music.forms import get_form
from engine.settings import Settings
from tests.helpers import REPO

SHIPPED = ["jazz", "folk", "bach", "metheny"]


@pytest.mark.parametrize("seed", [0, 1, 7, 2026, 2**32 + 5, 2**40 + 123, -3, 2**63 + 9])
def test_the_draws_are_torch_generators(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed % (2**63))
    draw = Uniform(seed)
    expected = [float(torch.rand(1, generator=gen, dtype=torch.float64)) for _ in range(200)]
    assert [draw() for _ in range(200)] == expected  # across the 64-draw blocks too


@pytest.mark.parametrize("name", SHIPPED)
def test_the_numpy_twin_samples_the_same_tokens_and_changes(name: str) -> None:
    pt = load_checkpoint(REPO / "checkpoints" / name)
    np_ = load_checkpoint(REPO / "checkpoints" / name, numpy=True)
    assert np_.content_hash == pt.content_hash and getattr(np_.model, "numpy", False)
    conditioned = pt.model.config.n_eras > 0
    steered = {"rhythm_temperature": 1.1, "type_temperature": 1.1, "register": 1.0, "top_p": 1.0}  # as jazz's clips
    requests = [SampleRequest(bars=12, seed=s, temperature=0.9 + 0.1 * (s % 3), era=(s % 4) if conditioned else 0,
                              guidance=3.5 if s % 2 else 1.0, consonant_strong_beats=s % 3 == 0,
                              **(steered if s % 4 == 1 else {})) for s in range(8)]
    assert sample(np_.model, requests) == sample(pt.model, requests)
    form = get_form("chorale" if name == "bach" else "aabb" if name == "folk" else "aaba")
    for seed in range(5):
        assert (write_chorus(np_.harmony, form, 7, "major", seed, beats=4)
                == write_chorus(pt.harmony, form, 7, "major", seed, beats=4))


@pytest.mark.parametrize("style", ["jazz", "bach"])
def test_a_clip_composed_without_torch_is_byte_identical(style: str) -> None:
    settings = Settings.from_env(environ={}, dotenv=None)
    req = ComposeRequest.build(style, "15s", settings, [style], seed=31)
    with_torch, without = Composer(settings).compose(req), Composer(settings, numpy=True).compose(req)
    assert (without.midi, without.audio, without.summary["changes"]) == (with_torch.midi, with_torch.audio,
                                                                           with_torch.summary["changes"])


def test_a_gpu_request_keeps_torch() -> None:
    settings = Settings.from_env(environ={}, dotenv=None)
    assert Composer(settings, device="cpu", numpy=True).numpy
    assert not Composer(settings, device="cuda", numpy=True).numpy  # the GPU path samples with torch
    assert not Composer(settings, device="cpu").numpy


def test_weights_that_do_not_fit_the_config_are_refused_in_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    ck = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoint, ck)
    tensors = load_file(ck / "model.safetensors")
    del tensors["head.bias"]
    save_file(tensors, ck / "model.safetensors")
    meta = json.loads((ck / "meta.json").read_text())
    (ck / "meta.json").write_text(json.dumps({**meta, "content_hash": sha256_file(ck / "model.safetensors")}))
    with pytest.raises(CheckpointError, match=r"checkpoint tiny: weights do not match the model config \(missing weight head.bias\)"):
        load_checkpoint(ck, numpy=True)
    with pytest.raises(CheckpointError, match="weights do not match the model config"):
        load_checkpoint(ck)  # the torch loader says the same


def test_chorus_compose_on_the_cpu_never_imports_torch(tmp_path: Path) -> None:
    code = ("import sys; from bot.cli import main; rc = main(['compose', 'jazz', '10s', '--seed', '3', '--out', sys.argv[1]]);"
            " print('TORCH' if 'torch' in sys.modules else 'NO TORCH'); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                         timeout=300, env={**_env(), "CHORUS_DEVICE": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("NO TORCH") and (tmp_path / "clip.ogg").stat().st_size > 1000


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
