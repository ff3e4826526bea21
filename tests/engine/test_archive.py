"""The shared unpacker for untrusted archives (checkpoint uploads, corpus downloads)."""
from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from engine.formats.archive import ArchiveError, Caps, copy_capped, members, safe_parts, survey
from tests.helpers import deflated_zip, many_member_tgz, zip_bomb


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


CAPS = Caps(members=8, total_bytes=64 * 1024 * 1024, ratio=20)


def test_survey_lists_a_good_archive_without_unpacking() -> None:
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:xz") as tf:
        for name, data in (("ck/a.bin", os.urandom(3000)), ("ck/b.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    listed = survey(tbuf.getvalue(), CAPS)
    assert [(m.name, m.kind, m.size) for m in listed] == [("ck/a.bin", "file", 3000), ("ck/b.json", "file", 2)]
    assert listed[0].open() is None  # listed, not opened
    zipped = deflated_zip([("a.bin", os.urandom(100)), ("b.json", b"{}")])
    assert [(m.name, m.size) for m in survey(zipped, CAPS)] == [("a.bin", 100), ("b.json", 2)]


def test_a_100k_member_tar_is_refused_at_the_cap_without_reading_on() -> None:
    data = many_member_tgz(100_000)
    with pytest.raises(ArchiveError, match="more than 8 members"):
        survey(data, CAPS)
    # cut the stream after the first few hundred headers: reading on would find it damaged
    cut = data[:4096]
    with pytest.raises(ArchiveError, match="damaged"):
        list(members(cut))
    with pytest.raises(ArchiveError, match="more than 8 members"):
        survey(cut, CAPS)


def test_a_zip_member_count_comes_from_its_end_record_before_its_directory_is_parsed() -> None:
    bomb = zip_bomb(filler_bytes=1000)  # 23 members, 1 GB declared
    end = bomb.rfind(b"PK\x05\x06")
    directory = struct.unpack("<L", bomb[end + 16:end + 20])[0]
    scrambled = bomb[:directory] + b"\xff" * (end - directory) + bomb[end:]  # a directory zipfile cannot parse
    for data in (bomb, scrambled):
        with pytest.raises(ArchiveError, match="more than 8 members"):
            survey(data, CAPS)


def test_survey_caps_the_total_and_the_ratio() -> None:
    four_letters = os.urandom(1536 * 1024).translate(bytes(b"ACGT"[i % 4] for i in range(256)))  # ~4x compressible
    total = deflated_zip([("a.bin", four_letters), ("b.json", b"{}")])
    assert len(total) < 1024 * 1024
    with pytest.raises(ArchiveError, match="unpacks to more than 1,048,576 bytes"):
        survey(total, Caps(members=8, total_bytes=1024 * 1024, ratio=20))
    ratio = deflated_zip([("a.bin", 512 * 1024), ("b.json", b"{}")])  # zeros: ~1000x
    with pytest.raises(ArchiveError, match="unpacks to more than 20 times its size"):
        survey(ratio, CAPS)


def test_a_tar_member_declaring_gigabytes_is_refused_before_they_are_read() -> None:
    huge = tarfile.TarInfo("a.bin")
    huge.size = 10**10  # the data is not even there: reading on would find the stream short
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        survey(gzip.compress(huge.tobuf(tarfile.GNU_FORMAT)), CAPS)
    pax = tarfile.TarInfo("././@PaxHeader")  # tarfile reads a pax record whole: 1 GiB, were it not capped
    pax.type, pax.size = tarfile.XHDTYPE, 1 << 30
    with pytest.raises(ArchiveError, match="unpacks past 68,157,440 bytes"):
        survey(gzip.compress(pax.tobuf(tarfile.USTAR_FORMAT)), CAPS)
