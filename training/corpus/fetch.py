"""Download a corpus from the public URLs in its PROVENANCE.md (``chorus corpus fetch NAME --dest DIR``).

Each corpus has a :class:`Recipe`: which PROVENANCE URL to use (picked by a pattern), whether it is
one file or an archive, and which archive folders land where under ``dest``. A download is capped in
size and written to a scratch folder inside ``dest``; its sha256 is checked where the PROVENANCE gives
one; archives are unpacked member by member (absolute paths, ``..``, links and special files are
refused). Nothing reaches ``dest`` until every step has passed, and ``FETCHED.md`` records the source.
"""
from __future__ import annotations

import csv
import hashlib
import http.client
import logging
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

from engine.formats.archive import ArchiveError, copy_capped, members, safe_parts
from training.corpus.base import CorpusError

log = logging.getLogger(__name__)

MB = 1 << 20
TIMEOUT_S = 60.0  # seconds per socket operation, not for the whole download
MAX_MEMBER_BYTES = 100 * MB  # one unpacked file
MAX_UNPACKED_BYTES = 2048 * MB  # all unpacked files of one fetch
CHUNK = 1 << 16
MARKER = "FETCHED.md"

# opener(url, timeout=seconds) -> a response with .read(n) and .headers, usable in `with`.
Opener = Callable[..., Any]
# progress(done_bytes, total_bytes or None when the server does not say)
Progress = Callable[[int, int | None], None]
# post(out_dir, scratch_dir, provenance_text, opener) -> warnings; runs before anything reaches dest.
PostStep = Callable[[Path, Path, str, Opener], list[str]]


class FetchError(CorpusError):
    """A corpus could not be downloaded or unpacked."""


_URL = re.compile(r"https?://[^\s<>\"'`]+")
_SHA256 = re.compile(r"sha256:\s*`?([0-9a-fA-F]{64})\b")
_HELD_OUT = re.compile(r"Held-out melids:\s*([\d,\s]+)")


def parse_provenance(text: str) -> list[str]:
    """Return every http(s) URL in a PROVENANCE.md text, in order, without duplicates.

    Trailing punctuation (``.``, ``,``, ``;``, ``:``, ``*``, unbalanced ``)`` or ``]``) is stripped.
    """
    urls: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0)
        while url and (url[-1] in ".,;:!?*" or (url[-1] in ")]" and url.count(url[-1]) >
                                                 url.count("(" if url[-1] == ")" else "["))):
            url = url[:-1]
        if url not in urls:
            urls.append(url)
    return urls


def parse_sha256(text: str) -> str:
    """Return the first ``sha256: <hex>`` digest in a PROVENANCE text (lowercase), or ``""``."""
    match = _SHA256.search(text)
    return match.group(1).lower() if match else ""


def parse_held_out(text: str) -> frozenset[int]:
    """Return the melids of the ``Held-out melids:`` line of the wjazzd PROVENANCE (empty if none)."""
    match = _HELD_OUT.search(text)
    return frozenset(int(m) for m in re.findall(r"\d+", match.group(1))) if match else frozenset()


def select_url(pattern: str, urls: list[str], name: str) -> str:
    """Return the first URL that ``re.search(pattern)`` matches.

    Raises:
        FetchError: no URL matches.
    """
    for url in urls:
        if re.search(pattern, url):
            return url
    raise FetchError(f"the PROVENANCE.md of {name} lists no URL matching {pattern!r}")


@dataclass(frozen=True)
class Recipe:
    """How to fetch one corpus.

    ``url_pattern`` picks the URL from the PROVENANCE.md; ``default_url`` (and ``sha256``) are the
    fallback when no PROVENANCE.md is at hand, and a test keeps them equal to the shared copy.
    ``members`` maps an archive folder or file pattern (one ``fnmatch`` pattern per path part, e.g.
    ``*/MIDI/``) to a path under ``dest``; ``suffixes`` (if set) keeps only files with those endings.
    """

    url_pattern: str
    default_url: str
    kind: str  # "file", "zip" or "tar.gz"
    filename: str = ""  # kind "file": the name under dest
    sha256: str = ""
    members: tuple[tuple[str, str], ...] = ()
    suffixes: tuple[str, ...] = ()
    max_bytes: int = 200 * MB  # download cap
    note: str = ""
    post: PostStep | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("file", "zip", "tar.gz"):
            raise ValueError(f"bad recipe kind {self.kind!r}: expected file, zip or tar.gz")
        if (self.kind == "file") != bool(self.filename) or (self.kind != "file") != bool(self.members):
            raise ValueError(f"recipe for {self.default_url}: a file needs a filename, an archive members")


@dataclass
class FetchReport:
    """What one fetch wrote: ``files`` relative to ``dest``, ``bytes`` their total size."""

    name: str
    url: str
    dest: Path
    sha256: str  # of the downloaded file
    downloaded: int  # bytes
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def fetch(name: str, dest: Path, provenance_dir: Path | None = None,
          opener: Opener = urllib.request.urlopen, progress: Progress | None = None) -> FetchReport:
    """Download corpus ``name`` into the empty (or new) folder ``dest``.

    Args:
        name: a key of :data:`RECIPES`.
        dest: where the corpus goes; it must not exist or be empty.
        provenance_dir: a folder holding ``<name>/PROVENANCE.md``; without it the recipe's defaults.
        opener: ``urllib.request.urlopen`` or a stand-in with its ``(url, timeout=)`` call.
        progress: called as ``progress(done_bytes, total_bytes_or_None)`` while downloading.

    Raises:
        FetchError: unknown name, non-empty dest, download or checksum failure, unsafe archive.
    """
    recipe = RECIPES.get(name)
    if recipe is None:
        raise FetchError(f"unknown corpus {name!r}: choose from {', '.join(sorted(RECIPES))}")
    text = _provenance_text(name, provenance_dir)
    url = select_url(recipe.url_pattern, parse_provenance(text), name) if text else recipe.default_url
    expected = parse_sha256(text) if text else recipe.sha256
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FetchError(f"destination {dest} is not an empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest))
    try:
        download, out = scratch / "download", scratch / "out"
        out.mkdir()
        log.info("fetching %s from %s", name, url)
        digest, size = _download(url, download, recipe.max_bytes, opener, progress)
        if expected and digest != expected:
            raise FetchError(f"sha256 mismatch for {url}: expected {expected}, got {digest}")
        if recipe.kind == "file":
            download.rename(out / recipe.filename)
        else:
            _unpack(download, recipe, out, url)
        warnings = recipe.post(out, scratch, text, opener) if recipe.post else []
        files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
        report = FetchReport(name, url, dest, digest, size, files,
                             sum((out / f).stat().st_size for f in files), warnings)
        for child in out.iterdir():
            child.rename(dest / child.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (dest / MARKER).write_text(_marker(report, recipe, text), encoding="utf-8")
    for warning in warnings:
        log.warning("%s: %s", name, warning)
    log.info("fetched %s: %d files, %d bytes into %s", name, len(files), report.bytes, dest)
    return report


def _provenance_text(name: str, provenance_dir: Path | None) -> str:
    if provenance_dir is None:
        return ""
    path = Path(provenance_dir) / name / "PROVENANCE.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FetchError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _download(url: str, path: Path, max_bytes: int, opener: Opener,
              progress: Progress | None) -> tuple[str, int]:
    """Stream ``url`` into ``path``; return (sha256 hex, bytes). Raises FetchError."""
    digest, done = hashlib.sha256(), 0
    try:
        with opener(url, timeout=TIMEOUT_S) as resp, path.open("wb") as fh:
            length = getattr(resp, "headers", {}).get("Content-Length")
            total = int(length) if length else None
            if total is not None and total > max_bytes:
                raise FetchError(f"{url} is {total} bytes, over the {max_bytes} byte cap")
            while chunk := resp.read(CHUNK):
                done += len(chunk)
                if done > max_bytes:
                    raise FetchError(f"{url} is over the {max_bytes} byte cap")
                digest.update(chunk)
                fh.write(chunk)
                if progress:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"could not download {url}: {exc.reason}") from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise FetchError(f"could not download {url}: {exc or type(exc).__name__}") from exc
    return digest.hexdigest(), done


def _route(parts: tuple[str, ...], members: tuple[tuple[str, str], ...]) -> PurePosixPath | None:
    """Where a member goes under dest, or None when no recipe pattern selects it."""
    for pattern, target in members:
        pat = PurePosixPath(pattern).parts
        if len(parts) >= len(pat) and all(fnmatchcase(p, q) for p, q in zip(parts, pat, strict=False)):
            return PurePosixPath(target, *parts[len(pat):])
    return None


def _unpack(archive: Path, recipe: Recipe, out: Path, url: str) -> None:
    """Unpack the selected members of ``archive`` into ``out``, refusing anything unsafe."""
    total = 0
    try:
        for member in members(archive):
            try:
                parts = safe_parts(member.name)
            except ArchiveError as exc:
                raise FetchError(f"refusing {exc} in {url}") from exc
            rel = _route(parts, recipe.members)
            if rel is None or member.kind == "dir":
                continue
            if member.kind != "file":
                raise FetchError(f"refusing {member.kind} member {member.name!r} in {url}")
            if recipe.suffixes and not member.name.lower().endswith(recipe.suffixes):
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            src = member.open()
            if src is None:
                raise FetchError(f"cannot read member {member.name!r} of {url}")
            try:
                total += copy_capped(src, target, min(MAX_MEMBER_BYTES, MAX_UNPACKED_BYTES - total))
            except ArchiveError as exc:
                raise FetchError(f"member {member.name!r} of {url} unpacks past the size cap") from exc
    except (ArchiveError, zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise FetchError(f"could not unpack {url}: {exc}") from exc
    if not any(p.is_file() for p in out.rglob("*")):
        raise FetchError(f"{url} holds nothing under {', '.join(p for p, _ in recipe.members)}")


def _marker(report: FetchReport, recipe: Recipe, provenance: str) -> str:
    lines = [f"# {report.name}: fetched by `chorus corpus fetch`", "",
             f"- Date (UTC): {datetime.now(UTC).isoformat(timespec='seconds')}",
             f"- Source: {report.url}", f"- Download sha256: {report.sha256} ({report.downloaded} bytes)",
             f"- Files: {len(report.files)}, {report.bytes} bytes"]
    lines += [f"- Note: {recipe.note}"] if recipe.note else []
    lines += [f"- Warning: {w}" for w in report.warnings]
    if provenance:
        lines += ["", "## PROVENANCE.md at fetch time", "", provenance.rstrip()]
    return "\n".join(lines) + "\n"


# --- wjazzd: drop the held-out solos -------------------------------------------------------------

# Fallbacks for when no PROVENANCE.md is at hand; a test keeps them equal to the shared copy.
WJAZZD_METADATA_PATTERN = r"jazzomat/python/[0-9a-f]{40}/.*df_solos\.csv$"
WJAZZD_METADATA_URL = ("https://raw.githubusercontent.com/jazzomat/python/"
                       "6ddb29abfb88f0267fe60774af63ac3680ef3b86/publications/book_2017/data/df_solos.csv")
WJAZZD_HELD_OUT = frozenset({
    4, 16, 17, 20, 21, 50, 53, 58, 63, 65, 80, 87, 90, 92, 112, 123, 124, 125, 128, 134, 139, 142,
    143, 159, 161, 169, 198, 199, 201, 247, 249, 251, 254, 270, 281, 289, 290, 317, 324, 325, 349,
    358, 363, 383, 384, 385, 386, 392, 400, 424, 429, 439})
# df_solos names whose CSV is named differently beyond case and punctuation (PROVENANCE "Name fixes").
_SOLO_ALIASES = {"fatsnavarrogoodbaitsolo": "fatsnavarrogoodbaitno1solo",
                 "fatsnavarrogoodbaitalternatetakesolo": "fatsnavarrogoodbaitno2solo"}


def _solo_key(stem: str) -> str:
    key = re.sub(r"[^0-9a-z]", "", stem.lower())
    return _SOLO_ALIASES.get(key, key)


def _drop_wjazzd_held_out(out: Path, scratch: Path, text: str, opener: Opener) -> list[str]:
    """Delete the held-out solos' CSVs; return a warning per held-out melid that matched no file.

    The CSVs are named ``<Performer>_<Title>_Solo.csv``, so each melid is mapped to a name through
    the ``filename_sv`` column of the solo metadata (``df_solos.csv``), ignoring case and punctuation.
    """
    url = (select_url(WJAZZD_METADATA_PATTERN, parse_provenance(text), "wjazzd") if text
           else WJAZZD_METADATA_URL)
    held = parse_held_out(text) if text else WJAZZD_HELD_OUT
    meta = scratch / "df_solos.csv"
    _download(url, meta, 10 * MB, opener, None)
    with meta.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"melid", "filename_sv"} <= rows[0].keys():
        raise FetchError(f"{url} has no melid and filename_sv columns")
    keys = {int(r["melid"]): _solo_key(r["filename_sv"].removesuffix("_FINAL.sv") + "_Solo")
            for r in rows if r["melid"].strip().isdigit()}
    files: dict[str, list[Path]] = {}
    for path in out.glob("csv_*/*.csv"):
        files.setdefault(_solo_key(path.stem.removesuffix("_bass")), []).append(path)
    warnings, dropped = [], 0
    for melid in sorted(held):
        hits = files.get(keys.get(melid, ""), [])
        if not any(p.parent.name == "csv_melody" for p in hits):
            warnings.append(f"held-out melid {melid} matched no melody CSV; remove it by hand")
        for path in hits:
            path.unlink()
            dropped += 1
    log.info("wjazzd: dropped %d files of %d held-out solos", dropped, len(held))
    return warnings


_GH = "https://github.com"
_RAW = "https://raw.githubusercontent.com"
RECIPES: dict[str, Recipe] = {
    "deepjazz_metheny": Recipe(
        r"jisungk/deepjazz/[0-9a-f]{40}/midi/original_metheny\.mid$",
        f"{_RAW}/jisungk/deepjazz/9c3b11245db196311b9f0176e984a38725a7113a/midi/original_metheny.mid",
        "file", filename="original_metheny.mid",
        sha256="0da8322ceab36b036682b5ece0c315193f7b701a3340a0ca5a523b107c6f428d"),
    "jazzstandards_ireal": Recipe(
        r"mikeoliphant/JazzStandards/[0-9a-f]{40}/JazzStandards\.json$",
        f"{_RAW}/mikeoliphant/JazzStandards/47ca0d6b624514b065413ab3c480b36ed0c5b64e/JazzStandards.json",
        "file", filename="JazzStandards.json",
        sha256="27c4c843bb003ac92595cf6d64374737854794c5102ed7cb6293c5ea51b039b0"),
    "nottingham": Recipe(
        r"jukedeck/nottingham-dataset/archive/[0-9a-f]{40}\.zip$",
        f"{_GH}/jukedeck/nottingham-dataset/archive/0992bb6cd864f6d4b90d6663e08c0ef53ffaa08f.zip",
        "zip", members=(("*/MIDI/", "MIDI"), ("*/ABC_cleaned/", "ABC_cleaned"))),
    "openewld": Recipe(
        r"00sapo/OpenEWLD/archive/[0-9a-f]{40}\.zip$",
        f"{_GH}/00sapo/OpenEWLD/archive/ec03cbd809ca5296ee708591b970d0423dcbe31c.zip",
        "zip", members=(("*/OpenEWLD.db", "OpenEWLD.db"), ("*/dataset/", "dataset")),
        suffixes=(".mxl", ".db")),
    "improvisor_leadsheets": Recipe(
        r"Impro-Visor/Impro-Visor/archive/[0-9a-f]{40}\.zip$",
        f"{_GH}/Impro-Visor/Impro-Visor/archive/550bbb554962249aceb0e82a72142e3e5b3c0d4a.zip",
        "zip", members=(("*/leadsheets/imaginary-book/", "imaginary-book"),
                        ("*/leadsheets/transcriptions/", "transcriptions")),
        suffixes=(".ls",), max_bytes=1024 * MB,  # the whole application repository
        note="The archive is the whole Impro-Visor repository; only the .ls lead sheets are kept."),
    "wjazzd": Recipe(
        r"vincenzomadaghiele/MINGUS/archive/[0-9a-f]{40}\.tar\.gz$",
        f"{_GH}/vincenzomadaghiele/MINGUS/archive/3c4ac1210c6b09cc9ed8f904a0bf49336a4fd5af.tar.gz",
        "tar.gz", members=tuple((f"*/A_preprocessData/data/WjazzDBcsv/{d}/", d)
                                for d in ("csv_melody", "csv_beats", "csv_bass")),
        suffixes=(".csv",), max_bytes=1024 * MB, post=_drop_wjazzd_held_out,
        note="Only csv_melody, csv_beats and csv_bass are fetched, minus the held-out solos. "
             "index.csv, solos_metadata.csv and midi/ of the shared copy are derived or come from "
             "other sources and are not fetched; without index.csv the wjazzd reader reads every "
             "csv_melody/*.csv with the csv_beats file of the same name."),
}
