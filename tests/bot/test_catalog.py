from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import bot.store.install
from bot.service.compose import ComposeService
from bot.settings import BotSettings
from bot.store.catalog import Catalog, CatalogError, Installed
from bot.store.db import Job, Store
from tests.helpers import deflated_zip, many_member_tgz, zip_bomb

MiB = 1024 * 1024


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
        "oversized": lambda: deflated_zip([("model.safetensors", 65 * MiB), ("meta.json", files["meta.json"])]),
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


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(file, bytes) of every member the installer unpacks."""
    seen: list[tuple[str, int]] = []
    real = bot.store.install.copy_capped

    def recording(src, target: Path, max_bytes: int) -> int:
        seen.append((target.name, real(src, target, max_bytes)))
        return seen[-1][1]

    monkeypatch.setattr(bot.store.install, "copy_capped", recording)
    return seen


def refusal(cat: Catalog, archive: bytes, filename: str = "upload.zip") -> str:
    with pytest.raises(CatalogError) as err:
        asyncio.run(cat.install(archive, filename))
    assert "\n" not in str(err.value)
    assert not list(cat.root.iterdir())  # the staging folder is gone
    return str(err.value)


def meta_with(ck: Path, change) -> bytes:
    meta = json.loads((ck / "meta.json").read_text())
    change(meta)
    return json.dumps(meta).encode()


def test_a_zip_bomb_is_refused_from_its_member_list_with_nothing_written(tiny_checkpoint: Path, tmp_path: Path,
                                                                        writes: list) -> None:
    bomb = zip_bomb(meta=(tiny_checkpoint / "meta.json").read_bytes())  # ~12 MB of zip, ~1 GB unpacked
    assert 11 * MiB < len(bomb) < 13 * MiB
    assert refusal(Catalog(tmp_path / "checkpoints", 64 * MiB), bomb, "bomb.zip") == "bomb.zip: more than 8 members"
    assert writes == []


def test_a_100k_member_tar_is_refused_with_nothing_written(tmp_path: Path, writes: list) -> None:
    message = refusal(Catalog(tmp_path / "checkpoints", 64 * MiB), many_member_tgz(100_000), "many.tar.gz")
    assert message == "many.tar.gz: more than 8 members"
    assert writes == []


def test_the_ratio_and_total_caps_refuse_before_writing(tiny_checkpoint: Path, tmp_path: Path, writes: list) -> None:
    meta = (tiny_checkpoint / "meta.json").read_bytes()
    zeros = deflated_zip([("model.safetensors", 8 * MiB), ("meta.json", meta)])  # ~1000x
    assert refusal(Catalog(tmp_path / "a", 64 * MiB), zeros) == "upload.zip: unpacks to more than 20 times its size"
    four_letters = os.urandom(3 * MiB).translate(bytes(b"ACGT"[i % 4] for i in range(256)))  # ~4x
    big = deflated_zip([("model.safetensors", four_letters), ("meta.json", meta)])
    assert len(big) < 2 * MiB
    assert refusal(Catalog(tmp_path / "b", 2 * MiB), big) == "upload.zip: unpacks to more than 2,097,152 bytes"
    assert writes == []


@pytest.mark.parametrize(("members", "expected"), [
    ({"x/model.safetensors": b"1", "x/meta.json": b"2", "x/notes.txt": b"3"}, "it also holds 'x/notes.txt'"),
    ({"a/model.safetensors": b"1", "b/meta.json": b"2"}, "must sit side by side"),
    ({"a/b/model.safetensors": b"1", "a/b/meta.json": b"2"}, "it also holds 'a/b/model.safetensors', 'a/b/meta.json'"),
    ({"model.safetensors": b"1"}, "meta.json is missing"),
])
def test_anything_but_the_two_files_is_refused_before_writing(tmp_path: Path, writes: list, members: dict,
                                                             expected: str) -> None:
    assert expected in refusal(Catalog(tmp_path / "checkpoints", 64 * MiB), zip_of(members))
    assert writes == []


def test_a_big_model_config_is_refused_by_the_validator_before_any_model_is_built(tiny_checkpoint: Path,
                                                                                  tmp_path: Path) -> None:
    files = good_files(tiny_checkpoint)
    files["meta.json"] = meta_with(tiny_checkpoint, lambda m: m["model_config"].update(hidden=4096, layers=4))
    message = refusal(Catalog(tmp_path / "checkpoints", 64 * MiB), zip_of(files))
    assert message.startswith("model_config describes ") and "at most 67,108,864" in message


def test_a_bad_meta_type_is_refused_before_the_validator_starts(tiny_checkpoint: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_validator(*args, **kwargs):
        raise AssertionError("the validator was started")

    monkeypatch.setattr("bot.store.catalog.validate", no_validator)
    files = good_files(tiny_checkpoint)
    files["meta.json"] = meta_with(tiny_checkpoint, lambda m: m["metrics"].update(valid_nll="n/a"))
    assert refusal(Catalog(tmp_path / "checkpoints", 64 * MiB), zip_of(files)) == \
        "in meta.json, metrics.valid_nll is the string 'n/a', expected a number or null"


def test_the_validator_runs_under_a_memory_cap_and_a_time_limit(tiny_checkpoint: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "ck")
    asyncio.run(bot.store.install.validate(folder, 64 * MiB))
    monkeypatch.setattr(bot.store.install, "VALIDATOR_BASE_BYTES", 32 * MiB)  # less than torch needs to start
    with pytest.raises(CatalogError, match="memory"):
        asyncio.run(bot.store.install.validate(folder, 1))
    monkeypatch.undo()
    with pytest.raises(CatalogError, match="took longer than 0 s"):
        asyncio.run(bot.store.install.validate(folder, 64 * MiB, timeout=0.001))


def test_a_bad_meta_already_on_disk_is_listed_as_broken_and_nothing_else_breaks(
        tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoint, root / "jazz")
    bad = shutil.copytree(tiny_checkpoint, root / "odd")
    (bad / "meta.json").write_bytes(meta_with(tiny_checkpoint, lambda m: m["metrics"].update(valid_nll="n/a")))
    cat = Catalog(root, 64 * MiB)
    with caplog.at_level(logging.WARNING, logger="bot.store.catalog"):
        for _ in range(3):  # /styles, /styles, /chorus-admin checkpoints
            assert [c.name for c in cat.installed()] == ["jazz"]
            assert list(cat.styles()) == ["jazz"] and "NLL" in cat.styles()["jazz"].describe()
    assert cat.broken == {"odd": "in meta.json, metrics.valid_nll is the string 'n/a', expected a number or null"}
    assert sum("odd" in r.getMessage() for r in caplog.records) == 1  # logged once, not per listing
    odd = Installed("odd", "jazz", json.loads((bad / "meta.json").read_text()))
    assert odd.describe().startswith("odd: jazz, no metrics, 0.3 MB, ")
    assert Installed("x", "jazz", {"metrics": "n/a", "size_bytes": "big"}).describe() == "x: jazz, no metrics, 0.0 MB, "
    asyncio.run(cat.remove("odd"))  # and it can be removed
    assert sorted(p.name for p in root.iterdir()) == ["jazz"] and cat.broken == {}


def test_remove_deletes_an_inactive_checkpoint_and_refuses_the_rest(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    cat = Catalog(root, 64 * MiB)
    asyncio.run(cat.install(zip_of(good_files(tiny_checkpoint)), "ck.zip", "spare"))
    shutil.copytree(tiny_checkpoint, root / "jazz")
    (root / "linked").symlink_to(tiny_checkpoint)
    for name, expected in [("jazz", "jazz serves jazz; point that at another checkpoint with /chorus-admin use first"),
                           ("nothing", "no checkpoint named 'nothing' is installed"),
                           ("../jazz", "'../jazz' is not a checkpoint name"), (".install-x", "is not a checkpoint name"),
                           ("jazz/", "is not a checkpoint name")]:
        with pytest.raises(CatalogError) as err:
            asyncio.run(cat.remove(name))
        assert expected in str(err.value)
    cat.active["jazz"] = "spare"  # the admin's choice serves the style now, so the folder named jazz is free
    with pytest.raises(CatalogError, match="spare serves jazz"):
        asyncio.run(cat.remove("spare"))
    asyncio.run(cat.remove("jazz"))
    asyncio.run(cat.remove("linked"))  # a link goes, what it points at stays
    assert sorted(p.name for p in root.iterdir()) == ["spare"]
    assert (tiny_checkpoint / "model.safetensors").is_file()


def test_remove_waits_for_the_unfinished_jobs_that_use_the_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> None:
    async def run() -> None:
        root = tmp_path / "checkpoints"
        shutil.copytree(tiny_checkpoint, root / "old")  # style jazz under another name: serves nothing
        store = await Store.open(tmp_path / "c.db")
        service = ComposeService(BotSettings(), store, SimpleNamespace(), Catalog(root, 64 * MiB), tmp_path)
        job = Job(Job.new_id(), 7, 1, 2, {"style": "jazz", "seconds": 10}, "jazz", "old", "abc")
        await store.add_job(job)
        with pytest.raises(CatalogError, match="^an unfinished job still uses old; remove it when it is done$"):
            await service.remove("old")
        await store.update_job(job.id, status="delivered")
        await service.remove("old")
        assert not (root / "old").exists()
        await store.close()

    asyncio.run(run())


def test_a_packed_float16_archive_installs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from engine.formats.pack import pack

    done = pack(tiny_checkpoint, tmp_path / "tiny.zip")
    cat = Catalog(tmp_path / "checkpoints", 64 * 1024 * 1024)
    installed = asyncio.run(cat.install(done.path.read_bytes(), "tiny.zip", "half"))
    assert installed.name == "half" and installed.content_hash == done.content_hash
    assert installed.meta["weights"]["dtype"] == "float16"


def test_listings_read_each_meta_once_until_it_changes(tiny_checkpoint: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.store.catalog

    root = tmp_path / "checkpoints"
    folder = shutil.copytree(tiny_checkpoint, root / "jazz")
    reads: list[str] = []
    real = bot.store.catalog.read_meta
    monkeypatch.setattr(bot.store.catalog, "read_meta", lambda d: reads.append(d.name) or real(d))
    cat = Catalog(root, 64 * MiB)
    for _ in range(3):
        assert list(cat.styles()) == ["jazz"]
    assert reads == ["jazz"]
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "style": "folk"}, indent=2))  # rewritten: read again
    assert [(c.name, c.style) for c in cat.installed()] == [("jazz", "folk")] and reads == ["jazz", "jazz"]


def test_an_install_a_crash_interrupted_is_cleared_at_start(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoint, root / "jazz")
    shutil.copytree(tiny_checkpoint, root / ".install-0123abcd")  # unpacked, never validated nor renamed
    cat = Catalog(root, 64 * MiB)
    assert cat.clear_staging() == 1 and sorted(p.name for p in root.iterdir()) == ["jazz"]
    assert cat.clear_staging() == 0


@pytest.mark.parametrize("style", ["polka", "../../etc"])
def test_a_checkpoint_of_a_style_chorus_cannot_compose_is_refused(tiny_checkpoint: Path, tmp_path: Path,
                                                                   style: str) -> None:
    cat = Catalog(tmp_path / "checkpoints", 64 * 1024 * 1024)
    files = {**good_files(tiny_checkpoint), "meta.json": meta_with(tiny_checkpoint, lambda m: m.update(style=style))}
    says = refusal(cat, zip_of(files))
    assert f"for style {style!r}, which Chorus cannot compose; registered styles: bach, folk, jazz, metheny" in says
    assert cat.styles() == {}
