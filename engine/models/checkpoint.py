"""Self-describing checkpoints: a directory of ``model.safetensors`` and ``meta.json``.

``meta.json`` holds the model config, the vocabulary, the training config and preset, the corpus
fingerprint, metrics (validation NLL in nats/token and the n-gram baseline's), creation and
training time, the Chorus version and the sha256 of the weights file (``content_hash``).
Loading checks every part and raises `CheckpointError` with one clear line; weights are read with
safetensors only, so nothing is ever unpickled.
"""
from __future__ import annotations

import hashlib
import json
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError, EngineError
from engine.models.checkpoint_meta import meta_problem
from engine.models.config import MAX_WEIGHTS_BYTES
from engine.music import grammar
from engine.version import __version__ as CHORUS_VERSION

if TYPE_CHECKING:  # torch is imported only where weights are touched: listing stays light
    import torch

    from engine.models.lstm import ChorusLSTM

FORMAT = "chorus-checkpoint"
VERSION = 1
WEIGHTS = "model.safetensors"
META = "meta.json"
MAX_META_BYTES = 4 * 1024 * 1024
MIN_BYTES_PER_WEIGHT = 2  # float16: a weights file smaller than this per weight cannot match its config
NGRAM_PREFIX = "ngram."
HARMONY_PREFIX = "harmony."


class CheckpointError(EngineError):
    """A checkpoint is missing, corrupt, foreign or does not fit this version of Chorus."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: its folder, metadata, model (eval mode) and extra tensors."""

    path: Path
    meta: dict[str, Any]
    model: ChorusLSTM
    extra: dict[str, torch.Tensor]
    harmony: Any = None  # engine.models.harmony_net.HarmonyLSTM, when the checkpoint has one

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def style(self) -> str:
        return str(self.meta.get("style", ""))

    @property
    def content_hash(self) -> str:
        return str(self.meta["content_hash"])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(path: Path, model: ChorusLSTM, meta: dict[str, Any],
                    extra: dict[str, torch.Tensor] | None = None, harmony: Any = None) -> dict[str, Any]:
    """Write ``model.safetensors`` and ``meta.json`` into ``path`` (atomically per file).

    ``meta`` gets the format fields, vocabulary, model config, version and content hash filled in.
    Returns the meta written.
    """
    from safetensors.torch import save as st_save

    path.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for k, v in (extra or {}).items():
        tensors[NGRAM_PREFIX + k] = v.detach().cpu().contiguous()
    if harmony is not None:  # the style's harmony model (engine.models.harmony), described in meta["harmony"]
        for k, v in harmony.state_dict().items():
            tensors[HARMONY_PREFIX + k] = v.detach().cpu().contiguous()
        meta = {**meta, "harmony": {**meta.get("harmony", {}), "config": harmony.config.to_dict()}}
    data = st_save(tensors, metadata={"format": FORMAT})
    tmp = path / (WEIGHTS + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path / WEIGHTS)
    full = {
        "format": FORMAT,
        "version": VERSION,
        "chorus_version": CHORUS_VERSION,
        "created": meta.get("created") or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **meta,
        "model_config": model.config.to_dict(),
        "vocab": list(grammar.VOCAB),
        "content_hash": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data),
    }
    tmp = path / (META + ".tmp")
    tmp.write_text(json.dumps(full, indent=2) + "\n")
    tmp.replace(path / META)
    return full


def read_meta(path: Path) -> dict[str, Any]:
    """Read and check ``meta.json`` of a checkpoint folder (without loading weights or torch).

    Checks the format, version, vocabulary, required keys and the types of the fields Chorus
    reads (`engine.models.checkpoint_meta`).

    Raises:
        CheckpointError: one line naming the folder and what is wrong.
    """
    path = Path(path)
    meta_path, weights = path / META, path / WEIGHTS
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} is not a folder")
    if not meta_path.is_file() or not weights.is_file():
        missing = META if not meta_path.is_file() else WEIGHTS
        raise CheckpointError(f"checkpoint {path.name}: {missing} is missing")
    if meta_path.stat().st_size > MAX_META_BYTES:
        raise CheckpointError(f"checkpoint {path.name}: meta.json is too large")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise CheckpointError(f"checkpoint {path.name}: meta.json is not valid JSON") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path.name}: meta.json is not a Chorus checkpoint description")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path.name}: format version {meta.get('version')!r}, expected {VERSION}")
    vocab = meta.get("vocab")
    if vocab != list(grammar.VOCAB):
        n = len(vocab) if isinstance(vocab, list) else "no"
        raise CheckpointError(
            f"checkpoint {path.name}: its vocabulary ({n} tokens) differs from this grammar's ({len(grammar.VOCAB)} tokens)")
    for key in ("model_config", "content_hash", "metrics", "training", "corpus"):
        if key not in meta:
            raise CheckpointError(f"checkpoint {path.name}: meta.json lacks {key!r}")
    if (problem := meta_problem(meta)) is not None:
        raise CheckpointError(f"checkpoint {path.name}: in meta.json, {problem}")
    return meta


def read_weights(path: Path, expected_hash: str, weights_needed: int = 0, raw: bool = False,
                  numpy: bool = False) -> dict[str, Any]:
    """The tensors of ``model.safetensors``, checked: size, format, room for ``weights_needed``
    weights (of the model config), content hash. Float16 tensors (a packed checkpoint,
    `engine.formats.pack`) come back as float32 unless ``raw``. ``numpy``: numpy arrays, without torch."""
    from safetensors import SafetensorError

    weights = path / WEIGHTS
    size = weights.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"checkpoint {path.name}: model.safetensors is too large ({size:,} bytes)")
    data = weights.read_bytes()
    if len(data) < 8:
        raise CheckpointError(f"checkpoint {path.name}: model.safetensors is truncated")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8 or not data[8:9] == b"{":
        raise CheckpointError(f"checkpoint {path.name}: model.safetensors is not a safetensors file (or is truncated)")
    if size < MIN_BYTES_PER_WEIGHT * weights_needed:
        raise CheckpointError(f"checkpoint {path.name}: model_config describes {weights_needed:,} weights, "
                              f"more than model.safetensors ({size:,} bytes) holds")
    if hashlib.sha256(data).hexdigest() != expected_hash:
        raise CheckpointError(f"checkpoint {path.name}: model.safetensors does not match its content hash (corrupt or replaced)")
    try:
        if numpy:
            from safetensors.numpy import load as np_load

            tensors = np_load(data)
        else:
            from safetensors.torch import load as st_load

            tensors = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path.name}: model.safetensors cannot be read ({exc})") from exc
    if raw:
        return tensors
    if numpy:
        return {k: v.astype("float32") if v.dtype.name == "float16" else v for k, v in tensors.items()}
    import torch

    return {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}


def load_checkpoint(path: Path, device: str | torch.device = "cpu", numpy: bool = False) -> Checkpoint:
    """Load and validate a checkpoint folder.

    ``numpy``: the models as their numpy twins (`engine.models.nplstm.NumpyMelody`,
    `engine.models.harmony.HarmonySteps`), for sampling on the CPU without importing torch; ``extra``
    then holds numpy arrays.

    Raises:
        CheckpointError: one line naming what is wrong.
    """
    from engine.models.config import ModelConfig

    path = Path(path)
    meta = read_meta(path)
    try:  # checked on construction: bounds and the number of weights, before anything is built
        config = ModelConfig(**meta["model_config"])
    except TypeError as exc:
        raise CheckpointError(f"checkpoint {path.name}: model_config does not fit this Chorus version ({exc})") from exc
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path.name}: {exc}") from exc
    if config.vocab_size != len(grammar.VOCAB):
        raise CheckpointError(f"checkpoint {path.name}: model_config.vocab_size {config.vocab_size} != {len(grammar.VOCAB)}")
    tensors = read_weights(path, str(meta["content_hash"]), config.parameters(), numpy=numpy)
    extra = {k[len(NGRAM_PREFIX):]: v for k, v in tensors.items() if k.startswith(NGRAM_PREFIX)}
    harmony = _harmony(path, meta, {k[len(HARMONY_PREFIX):]: v for k, v in tensors.items() if k.startswith(HARMONY_PREFIX)},
                       numpy)
    weights = {k: v for k, v in tensors.items() if not k.startswith((NGRAM_PREFIX, HARMONY_PREFIX))}
    if numpy:
        from engine.models.nplstm import NumpyMelody

        try:
            return Checkpoint(path, meta, NumpyMelody(config, weights), extra, harmony)
        except ValueError as exc:
            raise CheckpointError(f"checkpoint {path.name}: weights do not match the model config ({str(exc)[:160]})") from exc
    from engine.models.lstm import ChorusLSTM

    model = ChorusLSTM(config)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line.strip() for line in first[1:] if line.strip()), first[0] if first else "")
        raise CheckpointError(f"checkpoint {path.name}: weights do not match the model config ({detail[:160]})") from exc
    model.to(device).eval()
    return Checkpoint(path, meta, model, extra, harmony)


def _harmony(path: Path, meta: dict[str, Any], weights: dict[str, Any], numpy: bool = False) -> Any:
    """The harmony model stored beside the melody model (``numpy``: its numpy twin), or None when
    the checkpoint has none."""
    if not weights:
        return None
    from engine.models.harmony import HarmonyConfig

    try:
        config = HarmonyConfig(**meta["harmony"]["config"])
        if numpy:
            from engine.models.harmony import HarmonySteps

            return HarmonySteps(config, weights)
        from engine.models.harmony_net import HarmonyLSTM

        model = HarmonyLSTM(config)
        model.load_state_dict(weights, strict=True)
    except (KeyError, TypeError, RuntimeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"checkpoint {path.name}: the harmony model does not match its description ({exc})"[:240]) from exc
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.models.checkpoint [--max-memory BYTES] DIR``: load and validate a checkpoint.

    Prints one line (``ok STYLE HASH`` or ``invalid: WHY``) and exits 0 or 2. ``--max-memory``
    caps this process's heap (RLIMIT_DATA, set before torch is imported), so a checkpoint that
    needs more is refused instead of taking the machine's memory; the bot's installer uses it.
    """
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    max_memory = None
    if args[:1] == ["--max-memory"] and len(args) > 1 and args[1].isdigit():
        max_memory, args = int(args[1]), args[2:]
    if len(args) != 1:
        print("usage: python -m engine.models.checkpoint [--max-memory BYTES] DIR")
        return 2
    if max_memory is not None:
        _limit_memory(max_memory)
    try:
        ck = load_checkpoint(Path(args[0]))
    except CheckpointError as exc:
        print(f"invalid: {exc}")
        return 2
    except (MemoryError, RuntimeError) as exc:  # torch reports a refused allocation as a RuntimeError
        if isinstance(exc, RuntimeError) and "allocate" not in str(exc):
            raise
        print(f"invalid: loading it needs more than {max_memory or 0:,} bytes of memory")
        return 2
    print(f"ok {ck.style} {ck.content_hash}")
    return 0


def _limit_memory(max_bytes: int) -> None:
    """Cap the heap (brk and private writable mappings) of this process at ``max_bytes``.

    RLIMIT_DATA, not RLIMIT_AS: shared libraries (CUDA builds of torch map gigabytes of them)
    count toward the address space but are not memory a checkpoint can make us use.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (max_bytes, max_bytes))


if __name__ == "__main__":
    raise SystemExit(main())
