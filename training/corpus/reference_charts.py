"""Reference chord charts of jazz standards (iReal JSON, Impro-Visor lead sheets) and their 80/20 split.

These are the real tunes the harmony metrics (``training/evaluation/harmony_metrics.py``) are fitted on and
compared with; see ``../shared/METRICS.md``, "Harmony and form".

* iReal (``jazzstandards_ireal/JazzStandards.json``): a list of ``{Title, Key?, TimeSignature?,
  Sections: [{Label, MainSegment: {Chords}, Endings?: [{Chords}]}]}``. Bars are split by ``|``,
  chords by ``,``; ``(X)`` (an alternate chord) is dropped. A section with endings is read as its
  main segment followed by its *first* ending (the first pass through the form). An empty bar
  repeats the previous chord. ``Key`` is ``F``, ``Bb``, ``Cmin``…; a tune without one (233, nearly
  all in C) gets the key whose scale holds most of its chord time (`estimate_key`).
* Impro-Visor (``improvisor_leadsheets/imaginary-book/*.ls``): the text after each
  ``(part (type chords) …)`` S-expression up to the next ``(part``; ``|`` separates bars, ``/``
  repeats the previous chord, ``(key -1)`` is the key signature (sharps +, flats -), read as major.
  Titles already in the iReal set are dropped.

The split (METRICS.md): a title is normalised (lower case, letters and digits only, the word "the"
removed); sha1 of it mod 5 != 0 is train, == 0 is test.

A chart that can't be read is skipped with its reason; the caller counts them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

from engine.errors import ChordError
from engine.music.chords import Chord, parse_chord
from training.corpus.charts import Bar, Chart, Section

log = logging.getLogger(__name__)

IREAL_FILE = Path("jazzstandards_ireal/JazzStandards.json")
IMPROVISOR_DIR = Path("improvisor_leadsheets/imaginary-book")
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
# Spellings of the corpora that `parse_chord` doesn't know -> ones it does (pattern, replacement).
_IREAL_SPELLINGS = ((re.compile(r"^([A-G][#b]?)07"), r"\1o7"), (re.compile(r"^([A-G][#b]?)0(?=/|$)"), r"\1o"),
                    (re.compile(r"m/maj7"), "m(maj7)"), (re.compile(r"maug"), "m#5"))
_LS_SPELLINGS = ((re.compile(r"^([A-G][#b]?)7\+"), r"\g<1>7#5"), (re.compile(r"^([A-G][#b]?)m\+"), r"\1m#5"),
                 (re.compile(r"^([A-G][#b]?)mM(aj)?"), r"\1m(maj7)"), (re.compile(r"^([A-G][#b]?)M7\+"), r"\1maj7#5"))
_ROOTS = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7,
          "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11, "Cb": 11}


def normalise_title(title: str) -> str:
    """``"The Days of Wine & Roses"`` -> ``"daysofwineroses"``: lower case, letters and digits, no "the"."""
    return "".join(w for w in re.findall(r"[a-z0-9]+", title.lower()) if w != "the")


def is_train(title: str) -> bool:
    """True for the 80% train split: sha1 of the normalised title mod 5 != 0."""
    return int(hashlib.sha1(normalise_title(title).encode()).hexdigest(), 16) % 5 != 0


def split_charts(charts: list[Chart]) -> tuple[list[Chart], list[Chart]]:
    """(train, test) by `is_train` of each title."""
    train = [c for c in charts if is_train(c.title)]
    return train, [c for c in charts if not is_train(c.title)]


def _chord(symbol: str, spellings: tuple[tuple[re.Pattern[str], str], ...]) -> Chord:
    """`parse_chord` after the corpus's own spellings are rewritten (``F07`` -> ``Fo7``).

    Raises:
        ChordError: an unreadable chord symbol.
    """
    for pattern, replacement in spellings:
        symbol = pattern.sub(replacement, symbol)
    return parse_chord(symbol)


def estimate_key(bars: list[Bar]) -> tuple[int, str]:
    """The major scale holding the most chord time; its relative minor when the minor tonic chord
    lasts longer than the major one.

    Returns:
        (tonic pitch class, "major" or "minor").
    """
    weights = [0.0] * 12  # chord time (bars) per pitch class
    tonic_time: dict[tuple[int, bool], float] = {}  # (root, minor?) -> bars
    for bar in bars:
        for chord in bar:
            if chord.is_nc:
                continue
            for pc in chord.chord_pcs:
                weights[pc] += 1.0 / len(bar)
            key = (chord.root, chord.family.startswith("min"))
            tonic_time[key] = tonic_time.get(key, 0.0) + 1.0 / len(bar)
    major = max(range(12), key=lambda t: sum(weights[(t + i) % 12] for i in _MAJOR))
    minor = (major + 9) % 12
    if tonic_time.get((minor, True), 0.0) > tonic_time.get((major, False), 0.0):
        return minor, "minor"
    return major, "major"


def _ireal_bars(text: str, previous: Chord | None) -> list[Bar]:
    """``"D9|Fm6|C7,B7,Bb7,A7"`` -> bars; ``(X)`` alternates dropped; an empty bar repeats the previous chord.

    Raises:
        ChordError: an unreadable chord symbol.
    """
    bars: list[Bar] = []
    for cell in re.sub(r"\([^)]*\)", "", text).split("|"):
        chords = tuple(_chord(s.strip(), _IREAL_SPELLINGS) for s in cell.split(",") if s.strip())
        if not chords and previous is not None:
            chords = (previous,)
        if chords:
            bars.append(chords)
            previous = chords[-1]
    return bars


def _ireal_chart(tune: dict, source: str) -> Chart:
    """One iReal tune as a chart (main segment + first ending per section).

    Raises:
        ChordError: an unreadable chord symbol.
        ValueError: no chords or an unknown key.
    """
    sections, previous = [], None
    for sec in tune.get("Sections", []):
        text = sec.get("MainSegment", {}).get("Chords", "")
        endings = sec.get("Endings") or []
        if endings:
            text = text + "|" + endings[0].get("Chords", "")
        bars = _ireal_bars(text, previous)
        if bars:
            previous = bars[-1][-1]
            sections.append(Section((re.sub(r"[^A-Z]", "", str(sec.get("Label", "")).upper()) or "A")[:1],
                                    tuple(bars)))
    if not sections:
        raise ValueError("no chords")
    key = tune.get("Key")
    if key:
        m = re.fullmatch(r"([A-G][#b]?)(min|-|m)?", key.strip())
        if not m:
            raise ValueError(f"unknown key {key!r}")
        tonic, mode = _ROOTS[m.group(1)], "minor" if m.group(2) else "major"
    else:
        tonic, mode = estimate_key([b for s in sections for b in s.bars])
    meta = {"time_signature": tune.get("TimeSignature", ""), "key_estimated": "" if key else "yes"}
    return Chart(str(tune.get("Title", "?")), tonic, mode, tuple(sections), source, meta)


def read_ireal_charts(path: Path) -> tuple[list[Chart], list[str]]:
    """The charts of the iReal JSON at ``path``.

    Returns:
        (charts, skipped reasons).
    """
    charts, skipped = [], []
    for i, tune in enumerate(json.loads(path.read_text(encoding="utf-8"))):
        title = tune.get("Title", f"#{i}")
        try:
            charts.append(_ireal_chart(tune, f"ireal:{title}"))
        except (ChordError, ValueError) as exc:
            skipped.append(f"{title}: {exc}")
    if skipped:
        log.info("iReal: %d charts read, %d skipped", len(charts), len(skipped))
    return charts, skipped


def _strip_sexprs(text: str) -> str:
    """Remove balanced ``( … )`` groups."""
    out, depth = [], 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _ls_chord_text(text: str) -> str:
    """The chord bars of a ``.ls`` file: the plain text after each ``(part (type chords) …)``."""
    chunks = []
    for part in re.split(r"\(part\b", text)[1:]:
        depth, end = 1, len(part)
        for i, ch in enumerate(part):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0:
                end = i
                break
        if re.search(r"\(type\s+chords\)", part[:end]):
            chunks.append(_strip_sexprs(part[end + 1:]))
    return " ".join(chunks)


def parse_ls_bars(chord_text: str) -> list[Bar]:
    """``"G Em | Am D7 G6 / |"`` -> bars; ``/`` repeats the previous chord in its slot.

    Raises:
        ChordError: an unreadable chord symbol, or a ``/`` with nothing before it.
    """
    bars: list[Bar] = []
    previous: Chord | None = None
    for cell in chord_text.split("|"):
        slots = []
        for word in cell.split():
            if word == "/":
                if previous is None:
                    raise ChordError("'/' before any chord")
                slots.append(previous)
            else:
                previous = _chord(word, _LS_SPELLINGS)
                slots.append(previous)
        if slots:
            bars.append(tuple(slots))
    return bars


def read_ls_chart(path: Path) -> Chart:
    """One Impro-Visor lead sheet as a chart (one section; the key signature read as major).

    Raises:
        ChordError: an unreadable chord symbol.
        ValueError: no chord part or no bars.
    """
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"\(title\s*([^)]*)\)", text)
    title = (m.group(1).strip() if m else "") or path.stem
    bars = parse_ls_bars(_ls_chord_text(text))
    if not bars:
        raise ValueError("no chord bars")
    k = re.search(r"\(key\s+(-?\d+)\)", text)
    tonic = (7 * int(k.group(1))) % 12 if k else 0
    meter = re.search(r"\(meter\s+(\d+)\s+(\d+)\)", text)
    meta = {"time_signature": f"{meter.group(1)}/{meter.group(2)}" if meter else ""}
    return Chart(title, tonic, "major", (Section("A", tuple(bars)),), f"improvisor:{path.name}", meta)


def read_improvisor_charts(folder: Path, exclude_titles: set[str] | frozenset[str] = frozenset()
                           ) -> tuple[list[Chart], list[str]]:
    """The ``.ls`` charts in ``folder`` whose normalised title is not in ``exclude_titles``.

    Returns:
        (charts, skipped reasons); a title dropped as a duplicate is a skipped reason too.
    """
    charts, skipped = [], []
    for path in sorted(folder.glob("*.ls")):
        try:
            chart = read_ls_chart(path)
        except (ChordError, ValueError, OSError) as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        if normalise_title(chart.title) in exclude_titles:
            skipped.append(f"{path.name}: title {chart.title!r} is in the iReal set")
            continue
        charts.append(chart)
    return charts, skipped


def read_reference_charts(corpus_dir: Path) -> tuple[list[Chart], list[str]]:
    """iReal charts plus the Impro-Visor charts whose titles are not among them.

    Returns:
        (charts, skipped reasons).
    """
    ireal, skipped = read_ireal_charts(corpus_dir / IREAL_FILE)
    titles = {normalise_title(c.title) for c in ireal}
    improvisor, skipped_ls = read_improvisor_charts(corpus_dir / IMPROVISOR_DIR, titles)
    return ireal + improvisor, skipped + skipped_ls
