"""The shared unpacker for untrusted archives (checkpoint uploads, corpus downloads)."""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from engine.archive import ArchiveError, copy_capped, members, safe_parts


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/passwd", "\\tmp\\evil", "a\0b", ".", ""])
def test_unsafe_paths_are_refused_by_name(name: str) -> None:
    with pytest.raises(ArchiveError, match="unsafe path"):
        safe_parts(name)


def test_safe_paths_keep_their_parts() -> None:
    assert safe_parts("./ck/model.safetensors") == ("ck", "model.safetensors")


def test_members_of_zip_and_tar_with_their_kinds(tmp_path: Path) -> None:
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("dir/", b"")
        zf.writestr("dir/a.txt", b"hello")
        link = zipfile.ZipInfo("dir/link")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tf:
        info = tarfile.TarInfo("dir/a.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
        sym = tarfile.TarInfo("dir/link")
        sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(sym)
    path = tmp_path / "a.tgz"
    path.write_bytes(tbuf.getvalue())
    assert [(m.name, m.kind) for m in members(zbuf.getvalue())] == [("dir/", "dir"), ("dir/a.txt", "file"),
                                                                    ("dir/link", "link")]
    for source in (tbuf.getvalue(), path):
        seen = []
        for m in members(source):  # a member opens only while the archive is being read
            seen.append((m.name, m.kind))
            if m.kind == "file":
                assert copy_capped(m.open(), tmp_path / "a.txt", 5) == 5
                with pytest.raises(ArchiveError, match="a.txt unpacks past 4 bytes"):
                    copy_capped(m.open(), tmp_path / "a.txt", 4)
        assert seen == [("dir/a.txt", "file"), ("dir/link", "link")]


def test_not_an_archive() -> None:
    with pytest.raises(ArchiveError, match="not a zip or tar archive"):
        list(members(b"just some bytes" * 100))
