from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import grammar as g
from engine.checkpoint import CheckpointError, load_checkpoint, read_meta
from tests.helpers import REPO


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_tiny_checkpoint_is_self_describing(tiny_checkpoint: Path) -> None:
    meta = read_meta(tiny_checkpoint)
    assert meta["vocab"] == list(g.VOCAB)
    for key in ("model_config", "training", "corpus", "metrics", "created", "chorus_version", "content_hash"):
        assert key in meta
    assert meta["training"]["preset"] == "tiny"
    assert meta["metrics"]["valid_nll"] > 0 and meta["metrics"]["ngram_nll"] > 0
    assert len(meta["corpus"]["fingerprint"]) == 64
    ck = load_checkpoint(tiny_checkpoint)
    assert ck.extra and not ck.model.training
    assert sorted(p.name for p in tiny_checkpoint.iterdir()) == ["meta.json", "model.safetensors"]


def corrupt_truncated(d: Path) -> None:
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])


def corrupt_pickle(d: Path) -> None:
    (d / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def corrupt_vocab(d: Path) -> None:
    meta = json.loads((d / "meta.json").read_text())
    meta["vocab"] = meta["vocab"][:-5] + ["X:99:u1"] * 5
    (d / "meta.json").write_text(json.dumps(meta))


def corrupt_shape(d: Path) -> None:
    meta = json.loads((d / "meta.json").read_text())
    meta["model_config"]["hidden"] = 40
    (d / "meta.json").write_text(json.dumps(meta))


def corrupt_meta_json(d: Path) -> None:
    (d / "meta.json").write_text("{not json")


def corrupt_missing(d: Path) -> None:
    (d / "model.safetensors").unlink()


def corrupt_flipped_byte(d: Path) -> None:
    w = d / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-10] ^= 0xFF
    w.write_bytes(bytes(data))


CASES = {
    "truncated": (corrupt_truncated, "truncated"),
    "pickle": (corrupt_pickle, "not a safetensors file"),
    "vocab": (corrupt_vocab, "vocabulary"),
    "shape": (corrupt_shape, "do not match the model config"),
    "meta": (corrupt_meta_json, "not valid JSON"),
    "missing": (corrupt_missing, "model.safetensors is missing"),
    "flipped": (corrupt_flipped_byte, "content hash"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_corrupt_or_foreign_checkpoints_are_refused(tiny_checkpoint: Path, tmp_path: Path, case: str) -> None:
    damage, message = CASES[case]
    d = copy(tiny_checkpoint, tmp_path / case)
    damage(d)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(d)
    assert "\n" not in str(err.value)
    load_checkpoint(tiny_checkpoint)  # the good one still loads: nothing else broke


def test_the_cli_refuses_a_pickle_in_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    d = copy(tiny_checkpoint, tmp_path / "bad")
    corrupt_pickle(d)
    out = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "--checkpoint", str(d), "--source",
                          f"wjazzd={REPO / 'tests' / 'fixtures' / 'wjazzd'}"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "not a safetensors file" in out.stderr
