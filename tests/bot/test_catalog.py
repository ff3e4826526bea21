from __future__ import annotations

import asyncio
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest

from bot.catalog import Catalog, CatalogError


def zip_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return buf.getvalue()


def tar_of(files: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink[0])
            info.type = tarfile.SYMTYPE
            info.linkname = symlink[1]
            tf.addfile(info)
    return buf.getvalue()


def good_files(ck: Path) -> dict[str, bytes]:
    return {"model.safetensors": (ck / "model.safetensors").read_bytes(), "meta.json": (ck / "meta.json").read_bytes()}


def test_install_a_good_archive_lists_it(tiny_checkpoint: Path, tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "checkpoints", 64 * 1024 * 1024)
    installed = asyncio.run(cat.install(zip_of(good_files(tiny_checkpoint)), "ck.zip", "mine"))
    assert installed.name == "mine" and installed.style == "jazz"
    assert [c.name for c in cat.installed()] == ["mine"]
    again = asyncio.run(cat.install(tar_of({f"ck/{k}": v for k, v in good_files(tiny_checkpoint).items()}), "ck.tgz"))
    assert again.name.startswith("jazz-")


@pytest.mark.parametrize("case", ["traversal", "absolute", "pickle", "symlink_zip", "symlink_tar", "oversized",
                                  "extra_file", "not_archive", "bad_vocab"])
def test_malicious_archives_are_refused_and_write_nothing_outside(tiny_checkpoint: Path, tmp_path: Path, case: str) -> None:
    root = tmp_path / "checkpoints"
    cat = Catalog(root, 64 * 1024 * 1024)
    files = good_files(tiny_checkpoint)
    archive = {
        "traversal": lambda: zip_of({"../../evil.txt": b"x", **files}),
        "absolute": lambda: tar_of({"/tmp/evil.txt": b"x", **files}),
        "pickle": lambda: zip_of({"model.safetensors": pickle.dumps({"a": 1}), "meta.json": files["meta.json"]}),
        "symlink_zip": lambda: zip_of(files, links={"link": "/etc/passwd"}),
        "symlink_tar": lambda: tar_of(files, symlink=("model2", "/etc/passwd")),
        "oversized": lambda: zip_of({"model.safetensors": b"\0" * (49 * 1024 * 1024), "meta.json": files["meta.json"]}),
        "extra_file": lambda: zip_of({**files, "payload.py": b"print(1)"}),
        "not_archive": lambda: b"just some bytes" * 100,
        "bad_vocab": lambda: zip_of({"model.safetensors": files["model.safetensors"],
                                     "meta.json": files["meta.json"].replace(b'"PAD"', b'"PADX"')}),
    }[case]()
    with pytest.raises(CatalogError) as err:
        asyncio.run(cat.install(archive, "upload.zip"))
    assert "\n" not in str(err.value)
    assert cat.installed() == []
    assert not list(root.iterdir())  # the staging folder is gone
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
