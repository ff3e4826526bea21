"""Tests for ``training.corpus.fetch``.

Downloads go to a local HTTP server on 127.0.0.1 that serves files and archives the tests build; an
opener passed to ``fetch`` maps each public URL to the same path on that server. Tests marked
``corpus`` read the shared PROVENANCE.md files from ``CHORUS_CORPUS_DIR`` (default
``../shared/corpus`` beside the repository); they skip when it is absent, except under CI.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import io
import os
import stat
import tarfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from training.corpus import fetch as fetch_mod
from training.corpus.base import CorpusError
from training.corpus.fetch import (
    MARKER,
    RECIPES,
    WJAZZD_HELD_OUT,
    WJAZZD_METADATA_PATTERN,
    WJAZZD_METADATA_URL,
    FetchError,
    fetch,
    parse_held_out,
    parse_provenance,
    parse_sha256,
    select_url,
)
from training.corpus.wjazzd import iter_wjazzd

REPO = Path(__file__).resolve().parents[2]
CORPUS_DIR = Path(os.environ.get("CHORUS_CORPUS_DIR") or REPO.parent / "shared" / "corpus")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")

SHA_A = "a" * 40  # stand-in commit ids in the test PROVENANCE files
SHA_B = "b" * 40


def shared_provenance(name: str) -> Path:
    """The shared corpus folder of ``name``; skip without it, fail under CI."""
    folder = CORPUS_DIR / name
    if not (folder / "PROVENANCE.md").is_file():
        message = f"corpus {name} not found in {CORPUS_DIR} (set CHORUS_CORPUS_DIR)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return folder


# --- local server and archive builders -----------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Server:
    """Files under ``root`` served at ``base``; ``opener`` maps public URLs onto it."""

    root: Path
    base: str
    requested: list[str] = field(default_factory=list)

    def put(self, url: str, data: bytes) -> None:
        parts = urllib.parse.urlsplit(url)
        path = self.root / parts.netloc / urllib.parse.unquote(parts.path).lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def opener(self, url: str, timeout: float) -> Any:
        self.requested.append(url)
        parts = urllib.parse.urlsplit(url)
        return urllib.request.urlopen(f"{self.base}/{parts.netloc}{parts.path}", timeout=timeout)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# An entry is (name, bytes) for a file or (name, ("symlink" | "hardlink", target)) for a link.
Entry = tuple[str, Any]


def make_zip(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            if isinstance(data, tuple):
                info = zipfile.ZipInfo(name)
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, data[1])
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def make_targz(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type = tarfile.SYMTYPE if data[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = data[1]
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_provenance(folder: Path, name: str, text: str) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "PROVENANCE.md").write_text(text, encoding="utf-8")
    return folder


def written(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}


# --- parsing -------------------------------------------------------------------------------------

def test_parse_provenance_strips_markdown_and_punctuation() -> None:
    text = (
        "- Source: https://github.com/a/b (see also http://abc.sourceforge.net/NMD/).\n"
        "- Download: `https://example.org/x/y.zip`, or **https://example.org/z.tar.gz**\n"
        "- Wiki: https://en.wikipedia.org/wiki/Foo_(bar), and (https://example.org/p)\n"
        "- Again: https://github.com/a/b; ftp://not.http/x\n"
    )
    assert parse_provenance(text) == [
        "https://github.com/a/b",
        "http://abc.sourceforge.net/NMD/",
        "https://example.org/x/y.zip",
        "https://example.org/z.tar.gz",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
        "https://example.org/p",
    ]
    assert parse_provenance("no links here") == []


def test_parse_sha256_and_held_out() -> None:
    assert parse_sha256("- sha256: " + "AB" * 32 + "\n") == "ab" * 32
    assert parse_sha256("no digest") == ""
    assert parse_held_out("- Held-out melids: 4,16, 17\n- next") == frozenset({4, 16, 17})
    assert parse_held_out("") == frozenset()


def test_select_url_names_the_corpus_when_nothing_matches() -> None:
    with pytest.raises(FetchError, match=r"PROVENANCE\.md of nottingham lists no URL"):
        select_url(r"\.zip$", ["https://example.org/a.tar.gz"], "nottingham")


# --- the recipes against the shared PROVENANCE files ---------------------------------------------

@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_defaults_match_shared_provenance(name: str) -> None:
    text = (shared_provenance(name) / "PROVENANCE.md").read_text(encoding="utf-8")
    recipe = RECIPES[name]
    assert select_url(recipe.url_pattern, parse_provenance(text), name) == recipe.default_url
    assert parse_sha256(text) == recipe.sha256
    if name == "wjazzd":
        assert select_url(WJAZZD_METADATA_PATTERN, parse_provenance(text), name) == WJAZZD_METADATA_URL
        assert parse_held_out(text) == WJAZZD_HELD_OUT


@pytest.mark.corpus
@pytest.mark.parametrize(("name", "filename"), [("deepjazz_metheny", "original_metheny.mid"),
                                                ("jazzstandards_ireal", "JazzStandards.json")])
def test_fetch_single_file_with_the_shared_provenance_and_sha256(
        server: Server, tmp_path: Path, name: str, filename: str) -> None:
    data = (shared_provenance(name) / filename).read_bytes()
    server.put(RECIPES[name].default_url, data)
    report = fetch(name, tmp_path / "out", provenance_dir=CORPUS_DIR, opener=server.opener)
    assert (tmp_path / "out" / filename).read_bytes() == data
    assert report.files == [Path(filename)] and report.bytes == len(data)
    assert "## PROVENANCE.md at fetch time" in (tmp_path / "out" / MARKER).read_text(encoding="utf-8")


@pytest.mark.corpus
def test_fetch_wjazzd_drops_held_out_solos_by_their_real_names(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = shared_provenance("wjazzd")
    prefix = "MINGUS-x/A_preprocessData/data/WjazzDBcsv"
    entries = [(f"{prefix}/{p.parent.name}/{p.name}", p.read_bytes())
               for p in sorted(shared.glob("csv_*/*.csv"))]
    server.put(RECIPES["wjazzd"].default_url, make_targz(entries))
    server.put(WJAZZD_METADATA_URL, (shared / "solos_metadata.csv").read_bytes())
    # Solos whose CSV name differs from the metadata: lowercase "solo", "No1", "Cross=Fade".
    monkeypatch.setattr(fetch_mod, "WJAZZD_HELD_OUT", frozenset({154, 162, 403}))
    report = fetch("wjazzd", tmp_path / "out", opener=server.opener)
    out = tmp_path / "out"
    assert report.warnings == []
    for gone in ("EricDolphy_Aisha_solo", "FatsNavarro_GoodBait_No1_Solo",
                 "SteveColeman_Cross-Fade-1_Solo"):
        assert not (out / "csv_melody" / f"{gone}.csv").exists()
        assert not (out / "csv_beats" / f"{gone}.csv").exists()
    assert not (out / "csv_bass" / "EricDolphy_Aisha_Solo_bass.csv").exists()
    with (shared / "index.csv").open(newline="", encoding="utf-8") as fh:
        n_solos = sum(1 for _ in csv.DictReader(fh))
    assert len(list(iter_wjazzd(out))) == n_solos - 3  # the reader's fallback without index.csv


# --- full fetches against the local server -------------------------------------------------------

def test_fetch_single_file_takes_url_and_sha256_from_the_provenance(server: Server, tmp_path: Path) -> None:
    data = b"MThd fake midi"
    url = f"https://raw.githubusercontent.com/jisungk/deepjazz/{SHA_A}/midi/original_metheny.mid"
    prov = write_provenance(tmp_path / "prov", "deepjazz_metheny",
                            f"- Download: {url}\n- sha256: {hashlib.sha256(data).hexdigest()}\n")
    server.put(url, data)
    seen: list[tuple[int, int | None]] = []
    report = fetch("deepjazz_metheny", tmp_path / "out", provenance_dir=prov, opener=server.opener,
                   progress=lambda done, total: seen.append((done, total)))
    assert server.requested == [url]
    assert (tmp_path / "out" / "original_metheny.mid").read_bytes() == data
    assert report.sha256 == hashlib.sha256(data).hexdigest() and report.downloaded == len(data)
    assert seen[-1] == (len(data), len(data))
    assert written(tmp_path / "out") == {"original_metheny.mid", MARKER}


def test_fetch_refuses_a_sha256_mismatch(server: Server, tmp_path: Path) -> None:
    url = f"https://raw.githubusercontent.com/mikeoliphant/JazzStandards/{SHA_A}/JazzStandards.json"
    prov = write_provenance(tmp_path / "prov", "jazzstandards_ireal", f"{url}\nsha256: {'0' * 64}\n")
    server.put(url, b"[]")
    with pytest.raises(FetchError, match=r"sha256 mismatch for .*JazzStandards\.json: expected 0+, got "):
        fetch("jazzstandards_ireal", tmp_path / "out", provenance_dir=prov, opener=server.opener)
    assert written(tmp_path / "out") == set()


def test_fetch_zip_keeps_only_the_recipe_folders(server: Server, tmp_path: Path) -> None:
    top = "nottingham-dataset-0992bb6"
    server.put(RECIPES["nottingham"].default_url, make_zip([
        (f"{top}/", b""), (f"{top}/README.md", b"readme"),
        (f"{top}/MIDI/jigs_1.mid", b"m1"), (f"{top}/MIDI/melody/jigs_1.mid", b"m2"),
        (f"{top}/ABC_cleaned/jigs.abc", b"X:1"), (f"{top}/ABC_original/jigs.abc", b"X:1"),
    ]))
    report = fetch("nottingham", tmp_path / "out", opener=server.opener)
    assert written(tmp_path / "out") == {"MIDI/jigs_1.mid", "MIDI/melody/jigs_1.mid",
                                         "ABC_cleaned/jigs.abc", MARKER}
    assert report.bytes == 7 and len(report.files) == 3
    assert "nottingham-dataset/archive" in (tmp_path / "out" / MARKER).read_text(encoding="utf-8")


def test_fetch_zip_filters_suffixes_and_keeps_odd_names(server: Server, tmp_path: Path) -> None:
    top = "OpenEWLD-ec03cbd"
    song = "dataset/Alfred_Hedenstierna-Wilhelm_Åström/Hjärtats_saga?/Hjärtats_saga"
    server.put(RECIPES["openewld"].default_url, make_zip([
        (f"{top}/OpenEWLD.db", b"db"), (f"{top}/LICENSE", b"MIT"),
        (f"{top}/{song}.mxl", b"mxl"), (f"{top}/{song}.csv", b"csv"), (f"{top}/{song}.txt", b"t"),
    ]))
    fetch("openewld", tmp_path / "out", opener=server.opener)
    assert written(tmp_path / "out") == {"OpenEWLD.db", f"{song}.mxl", MARKER}


def test_fetch_targz_and_drop_held_out(server: Server, tmp_path: Path) -> None:
    tar_url = f"https://github.com/vincenzomadaghiele/MINGUS/archive/{SHA_A}.tar.gz"
    meta_url = (f"https://raw.githubusercontent.com/jazzomat/python/{SHA_B}/"
                "publications/book_2017/data/df_solos.csv")
    prov = write_provenance(tmp_path / "prov", "wjazzd",
                            f"Whole repo: {tar_url}\nRaw URL: {meta_url}\n- Held-out melids: 2,3\n")
    prefix = f"MINGUS-{SHA_A}/A_preprocessData/data/WjazzDBcsv"
    entries = [(f"{prefix}/{d}/{n}_Solo.csv", b"bar\n") for d in ("csv_melody", "csv_beats")
               for n in ("Kept_One", "Held_Two")]
    entries += [(f"{prefix}/csv_bass/Held_two_Solo_bass.csv", b"1,2"),
                (f"{prefix}/csv_melody/notes.txt", b"x"), (f"MINGUS-{SHA_A}/README.md", b"r")]
    server.put(tar_url, make_targz(entries))
    server.put(meta_url, b"melid,filename_sv\n1,Kept_One_FINAL.sv\n2,Held_Two_FINAL.sv\n")
    report = fetch("wjazzd", tmp_path / "out", provenance_dir=prov, opener=server.opener)
    assert server.requested == [tar_url, meta_url]
    assert written(tmp_path / "out") == {"csv_melody/Kept_One_Solo.csv", "csv_beats/Kept_One_Solo.csv",
                                         MARKER}
    assert report.warnings == ["held-out melid 3 matched no melody CSV; remove it by hand"]
    marker = (tmp_path / "out" / MARKER).read_text(encoding="utf-8")
    assert "index.csv" in marker and "Warning: held-out melid 3" in marker


TOP = "nottingham-dataset-0992bb6"


@pytest.mark.parametrize(("kind", "entries", "reason"), [
    ("zip", [(f"{TOP}/MIDI/ok.mid", b"ok"), ("../evil", b"x")], "unsafe path '../evil'"),
    ("zip", [(f"{TOP}/MIDI/../../evil", b"x")], "unsafe path"),
    ("zip", [(f"{TOP}/MIDI/ok.mid", b"ok"), ("/tmp/evil", b"x")], "unsafe path '/tmp/evil'"),
    ("zip", [(f"{TOP}/MIDI/ok.mid", b"ok"), (f"{TOP}/MIDI/evil", ("symlink", "/etc/passwd"))],
     "refusing link member"),
    ("tar.gz", [("MINGUS-x/A_preprocessData/data/WjazzDBcsv/csv_melody/ok.csv", b"ok"),
                ("../evil", b"x")], "unsafe path '../evil'"),
    ("tar.gz", [("MINGUS-x/A_preprocessData/data/WjazzDBcsv/csv_beats/evil.csv",
                 ("symlink", "../../../../evil"))], "refusing link member"),
    ("tar.gz", [("MINGUS-x/A_preprocessData/data/WjazzDBcsv/csv_beats/evil.csv",
                 ("hardlink", "/etc/passwd"))], "refusing link member"),
])
def test_fetch_refuses_unsafe_archives_and_writes_nothing(
        server: Server, tmp_path: Path, kind: str, entries: list[Entry], reason: str) -> None:
    name = "nottingham" if kind == "zip" else "wjazzd"
    server.put(RECIPES[name].default_url, make_zip(entries) if kind == "zip" else make_targz(entries))
    dest = tmp_path / "deep" / "out"
    with pytest.raises(FetchError, match=reason.replace(".", r"\.")):
        fetch(name, dest, opener=server.opener)
    assert list(dest.iterdir()) == []
    assert not [p for p in tmp_path.rglob("*evil*") if "www" not in p.parts]
    assert not Path("/tmp/evil").exists()


def test_fetch_refuses_an_archive_without_the_recipe_folders(server: Server, tmp_path: Path) -> None:
    server.put(RECIPES["nottingham"].default_url, make_zip([("x/README.md", b"r")]))
    with pytest.raises(FetchError, match=r"holds nothing under \*/MIDI/, \*/ABC_cleaned/"):
        fetch("nottingham", tmp_path / "out", opener=server.opener)


def test_fetch_refuses_a_corrupt_archive(server: Server, tmp_path: Path) -> None:
    server.put(RECIPES["nottingham"].default_url, b"not a zip")
    with pytest.raises(FetchError, match="could not unpack .*nottingham"):
        fetch("nottingham", tmp_path / "out", opener=server.opener)


def test_fetch_refuses_a_download_over_the_cap(
        server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RECIPES, "deepjazz_metheny",
                        replace(RECIPES["deepjazz_metheny"], max_bytes=10, sha256=""))
    server.put(RECIPES["deepjazz_metheny"].default_url, b"x" * 11)
    with pytest.raises(FetchError, match="over the 10 byte cap"):
        fetch("deepjazz_metheny", tmp_path / "out", opener=server.opener)
    assert written(tmp_path / "out") == set()


def test_fetch_reports_http_and_network_errors(server: Server, tmp_path: Path) -> None:
    url = RECIPES["nottingham"].default_url
    with pytest.raises(FetchError, match=f"could not download {url}: HTTP 404"):
        fetch("nottingham", tmp_path / "a", opener=server.opener)

    def offline(url: str, timeout: float) -> Any:
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(FetchError, match=f"could not download {url}: Name or service not known"):
        fetch("nottingham", tmp_path / "b", opener=offline)


def test_fetch_refuses_unknown_names_and_busy_destinations(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="unknown corpus 'nope': choose from deepjazz_metheny, ") as info:
        fetch("nope", tmp_path / "out")
    assert isinstance(info.value, CorpusError)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(FetchError, match="is not an empty folder"):
        fetch("nottingham", tmp_path / "busy", opener=lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(FetchError, match=r"cannot read .*PROVENANCE\.md"):
        fetch("nottingham", tmp_path / "out", provenance_dir=tmp_path / "nowhere")
