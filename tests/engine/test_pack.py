"""``chorus checkpoints pack``: an archive within Discord's upload limit that composes the same clip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.formats.pack import DISCORD_UPLOAD_BYTES, pack
from engine.models.checkpoint import load_checkpoint, read_meta, sha256_file
from engine.settings import Settings
from tests.helpers import REPO


def unzip(archive: Path, dest: Path) -> Path:
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        zf.extractall(dest)
    folder = dest / Path(names[0]).parent
    assert [Path(n).name for n in names] == ["meta.json", "model.safetensors"]
    return folder


@pytest.fixture(scope="module")
def packed_jazz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The shipped jazz checkpoint packed by ``chorus checkpoints pack`` run from another folder."""
    tmp = tmp_path_factory.mktemp("pack")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp)}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "checkpoints", "pack", "jazz", "--out", "jazz.zip"],
                         cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and "stored as float16" in out.stdout
    return tmp / "jazz.zip", out.stdout


def test_the_shipped_jazz_checkpoint_packs_within_discords_upload_limit(packed_jazz: tuple[Path, str],
                                                                        tmp_path: Path) -> None:
    archive, _ = packed_jazz
    size = archive.stat().st_size
    assert size < DISCORD_UPLOAD_BYTES, f"{size:,} bytes"
    folder = unzip(archive, tmp_path)
    meta = read_meta(folder)
    original = read_meta(REPO / "checkpoints" / "jazz")
    assert meta["weights"] == {"dtype": "float16", "packed_from": original["content_hash"]}
    assert meta["content_hash"] == sha256_file(folder / "model.safetensors") != original["content_hash"]
    assert meta["size_bytes"] == (folder / "model.safetensors").stat().st_size


def test_packed_jazz_composes_the_same_clip_as_the_float32_one(packed_jazz: tuple[Path, str], tmp_path: Path) -> None:
    """Float16 weights round the logits, so a clip may part from the float32 one where two tokens were
    nearly equally likely (``python -m bench.pack`` counts how often: with the shipped jazz checkpoint most
    seeds give the identical MIDI, some not; the tiny test checkpoint, untrained, parts at once). These two
    seeds give identical clips: a load that got the weights wrong would not."""
    folder = unzip(packed_jazz[0], tmp_path)
    composer = Composer(Settings.from_env(environ={}, dotenv=None))
    for seed in (1, 2):
        req = ComposeRequest.build("jazz", "20s", Settings(), ["jazz"], seed=seed, tempo=140)
        full = composer.compose(req, checkpoint=REPO / "checkpoints" / "jazz")
        half = composer.compose(req, checkpoint=folder)
        assert half.midi == full.midi, f"seed {seed}: the float16 jazz checkpoint composed another clip"


def test_a_packed_checkpoint_loads_as_float32_and_composes_a_clip_as_long(tiny_checkpoint: Path, tmp_path: Path) -> None:
    done = pack(tiny_checkpoint, tmp_path / "tiny.zip")
    assert done.halved > 0 and done.weights_bytes < done.original_weights_bytes
    folder = unzip(done.path, tmp_path / "un")
    ck = load_checkpoint(folder)
    assert {p.dtype for p in ck.model.parameters()} == {torch.float32}
    req = ComposeRequest.build("jazz", "20s", Settings(), ["jazz"], seed=1, tempo=140)
    composer = Composer(Settings.from_env(environ={}, dotenv=None))
    full, half = composer.compose(req, checkpoint=tiny_checkpoint), composer.compose(req, checkpoint=folder)
    assert (half.summary["seconds"], half.summary["bars"]) == (full.summary["seconds"], full.summary["bars"])


def test_packing_a_packed_checkpoint_keeps_the_original_hash(tiny_checkpoint: Path, tmp_path: Path) -> None:
    first = unzip(pack(tiny_checkpoint, tmp_path / "a.zip").path, tmp_path / "a")
    again = pack(first, tmp_path / "b.zip")
    assert again.halved == 0
    meta = json.loads(zipfile.ZipFile(again.path).read(f"{first.name}/meta.json"))
    assert meta["weights"]["packed_from"] == read_meta(tiny_checkpoint)["content_hash"]
    assert meta["content_hash"] == read_meta(first)["content_hash"]
