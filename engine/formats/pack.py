"""``chorus checkpoints pack``: a checkpoint as one zip archive small enough to upload through Discord.

Float32 weights are stored as float16 (half the bytes; `engine.models.checkpoint.load_checkpoint` casts
them back to float32), other tensors (the n-gram counts) as they are. The packed checkpoint is a
checkpoint of its own: ``meta.json`` gets the new ``content_hash`` and ``size_bytes`` of the
weights it carries, and says what was done under ``weights``: ``{"dtype": "float16",
"packed_from": <the original content hash>}``. The archive holds ``NAME/model.safetensors`` and
``NAME/meta.json``, what ``/chorus-admin install`` (`bot.store.install`) accepts.
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engine.models.checkpoint import FORMAT, META, WEIGHTS, read_meta, read_weights

DISCORD_UPLOAD_BYTES = 10 * 1024 * 1024  # a message's attachments on a server without boosts


@dataclass(frozen=True)
class Packed:
    path: Path
    archive_bytes: int
    weights_bytes: int  # model.safetensors inside, unpacked
    original_weights_bytes: int
    halved: int  # float32 tensors stored as float16
    content_hash: str


def pack(folder: Path, out: Path, half: bool = True) -> Packed:
    """Write ``out`` (a zip) holding the checkpoint in ``folder``, float32 weights as float16 when ``half``.

    Raises:
        CheckpointError: the checkpoint does not read (meta, weights or their content hash).
    """
    import torch
    from safetensors.torch import save as st_save

    folder = Path(folder)
    meta = read_meta(folder)
    tensors = read_weights(folder, str(meta["content_hash"]), raw=True)
    halved = 0
    if half:
        for k, v in tensors.items():
            if v.dtype == torch.float32:
                tensors[k] = v.to(torch.float16).contiguous()
                halved += 1
    data = st_save(tensors, metadata={"format": FORMAT})
    content_hash = hashlib.sha256(data).hexdigest()
    weights_note = dict(meta.get("weights") or {})
    if halved:
        weights_note = {"dtype": "float16", "packed_from": weights_note.get("packed_from", meta["content_hash"])}
    new_meta = {**meta, "content_hash": content_hash, "size_bytes": len(data),
                **({"weights": weights_note} if weights_note else {})}
    name = folder.name
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(f"{name}/{WEIGHTS}", data)
        zf.writestr(f"{name}/{META}", json.dumps(new_meta, indent=2) + "\n")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return Packed(out, len(buf.getvalue()), len(data), (folder / WEIGHTS).stat().st_size, halved, content_hash)
