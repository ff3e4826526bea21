from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.models.checkpoint import CheckpointError, load_checkpoint, read_meta
from engine.music import grammar as g
from tests.helpers import REPO, run_chorus


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
    out = run_chorus("eval", "--checkpoint", str(d), "--source", f"wjazzd={REPO / 'tests' / 'fixtures' / 'wjazzd'}",
                     cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "not a safetensors file" in out.stderr


def edit_meta(d: Path, change) -> None:
    meta = json.loads((d / "meta.json").read_text())
    change(meta)
    (d / "meta.json").write_text(json.dumps(meta))


BAD_TYPES = {
    "metrics.valid_nll": (lambda m: m["metrics"].update(valid_nll="n/a"), "the string 'n/a', expected a number or null"),
    "style": (lambda m: m.update(style=5), "the number 5, expected a string"),
    "size_bytes": (lambda m: m.update(size_bytes="big"), "the string 'big', expected a whole number"),
    "content_hash": (lambda m: m.update(content_hash="../../etc"), "the string '../../etc', expected a sha256 in lowercase hex"),
    "sampling.forms": (lambda m: m["sampling"].update(forms=["x"]), "a list, expected a list of whole numbers"),
    "metrics": (lambda m: m.update(metrics=[1, 2]), "a list, expected an object"),
    "harmony.key_weights.0 major": (lambda m: m.update(harmony={"key_weights": {"0 major": "x"}}), "the string 'x', expected a number"),
    "conditioning.players": (lambda m: m.update(conditioning={"players": ["", 7]}), "a list, expected a list of strings"),
}


@pytest.mark.parametrize("field", sorted(BAD_TYPES))
def test_meta_fields_of_the_wrong_type_are_refused_in_one_line(tiny_checkpoint: Path, tmp_path: Path, field: str) -> None:
    change, expected = BAD_TYPES[field]
    d = copy(tiny_checkpoint, tmp_path / "bad")
    edit_meta(d, change)
    with pytest.raises(CheckpointError) as err:
        read_meta(d)
    assert str(err.value) == f"checkpoint bad: in meta.json, {field} is {expected}"


def test_a_meta_nested_too_deep_is_refused_not_crashed(tiny_checkpoint: Path, tmp_path: Path) -> None:
    d = copy(tiny_checkpoint, tmp_path / "deep")
    (d / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_meta(d)


@pytest.mark.parametrize(("config", "message"), [
    ({"hidden": 4096, "layers": 4}, "describes 4[0-9,]+ weights .1.9 GB as float32.; at most 67,108,864"),
    ({"hidden": 1000, "layers": 2}, r"describes [0-9,]+ weights, more than model.safetensors \(3[0-9,]+ bytes\) holds"),
    ({"hidden": "384"}, "model_config.hidden must be a whole number from 1 to 4,096, not '384'"),
    ({"layers": 0}, "model_config.layers must be a whole number from 1 to 16, not 0"),
    ({"dropout": 1.5}, "model_config.dropout must be a number from 0 to below 1, not 1.5"),
    ({"n_players": True}, "model_config.n_players must be a whole number"),
])
def test_model_configs_out_of_bounds_are_refused_before_a_model_is_built(
        tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict, message: str) -> None:
    import engine.models.lstm

    def never(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr(engine.models.lstm.ChorusLSTM, "__init__", never)
    d = copy(tiny_checkpoint, tmp_path / "big")
    edit_meta(d, lambda m: m["model_config"].update(config))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(d)


def test_harmony_configs_are_bounded_too() -> None:
    from engine.errors import ConfigError
    from engine.models.harmony import HarmonyConfig

    with pytest.raises(ConfigError, match="harmony.config.hidden must be a whole number from 1 to 1,024, not 8192"):
        HarmonyConfig(hidden=8192)


@pytest.mark.parametrize("config", [{}, {"n_eras": 9, "n_players": 55}, {"hidden": 32, "layers": 1, "token_dim": 16},
                                    {"n_players": 3, "layers": 3, "cond_dim": 8}])
def test_a_config_counts_its_weights_without_building_the_model(config: dict) -> None:
    from engine.models.lstm import ChorusLSTM, ModelConfig

    cfg = ModelConfig(**config)
    assert cfg.parameters() == ChorusLSTM(cfg).num_parameters()


def test_the_validator_cli_caps_its_own_memory(tiny_checkpoint: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "engine.models.checkpoint", "--max-memory", str(1 << 30), str(tiny_checkpoint)],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0 and ok.stdout.startswith("ok jazz ")
    script = "from engine.models.checkpoint import _limit_memory; _limit_memory(200 << 20); bytearray(400 << 20)"
    capped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert capped.returncode != 0 and "MemoryError" in capped.stderr
