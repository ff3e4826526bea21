"""The chorale rules (`engine.band.chorale`) as metrics: Bach's own rates and those of generated chorales.

``chorus corpus rules --source bach=DIR`` prints Bach's rates, measured by the same code that
``chorus eval`` applies to generated chorales, so the acceptance ("at most twice Bach's rate")
compares like with like.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.band.chorale import Chorale, RuleCounts, check, check_all, chorale_of_score
from engine.errors import EngineError
from training.corpus.base import ReadReport

Say = Callable[[str], None]


def read_chorales(root: Path, say: Say | None = None) -> tuple[list[Chorale], ReadReport]:
    """Every chorale under ``root`` (see `training.corpus.bach`); bad files skipped and counted."""
    from training.corpus.bach import chorale_files, load_chorale

    report = ReadReport()
    out: list[Chorale] = []
    files = chorale_files(root)
    for i, path in enumerate(files):
        try:
            sheet, chorale = load_chorale(path)
            report.sheets.append(sheet)
            out.append(chorale)
        except (EngineError, OSError, ValueError, KeyError, IndexError) as exc:
            report.skip(path, str(exc) or type(exc).__name__)
        if say and (i + 1) % 50 == 0:
            say(f"read {i + 1}/{len(files)} chorales")
    return out, report


def bach_rates(root: Path, say: Say | None = None) -> dict[str, Any]:
    """Bach's rule counts and rates over the chorales under ``root``."""
    chorales, report = read_chorales(root, say)
    total = check_all(chorales)
    return {"chorales": len(chorales), "skipped": len(report.skipped),
            "skipped_files": [{"path": s.path, "reason": s.reason} for s in report.skipped], **total.to_dict()}


def generated_rules(style: str, checkpoint: Path | None, clips: int, tempo: float = 72.0, bars: int = 16,
                    first_seed: int = 1000, settings: Any = None) -> RuleCounts:
    """The rules over ``clips`` chorales composed as a user gets them (`engine.compose.composer.Composer`,
    seeds from ``first_seed``, about ``bars`` bars of 4/4 at ``tempo``), read back from each
    clip's score at every beat with its fermatas."""
    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.music.forms import parse_key_name
    from engine.settings import Settings

    settings = settings or Settings()
    seconds = bars * 4 * 60.0 / tempo
    jobs = [(ComposeRequest.build(style, seconds, settings, [style], tempo=tempo, seed=s), checkpoint, None)
            for s in range(first_seed, first_seed + clips)]
    total = RuleCounts()
    for result in Composer(settings).compose_many(jobs):
        if isinstance(result, Exception):
            raise result
        tonic, mode = parse_key_name(result.summary["key"])
        total = total + check(chorale_of_score(result.score, tonic, mode, frozenset(result.score.fermatas)))
    return total


def chorale_block(ck, sources: list[str], clips: int, say: Say) -> dict[str, Any]:  # noqa: ANN001 - Checkpoint
    """``chorus eval``'s chorale block: the rules over composed chorales, and Bach's own rates where
    a ``bach=DIR`` source is given."""
    say(f"composing {clips} chorales for the chorale rules")
    block: dict[str, Any] = {"clips": clips, "generated": generated_rules(ck.style, ck.path, clips).to_dict()}
    for spec in sources:
        kind, _, path = spec.partition("=")
        if kind == "bach":
            block["bach"] = bach_rates(Path(path))
    return block


def format_chorale(block: dict[str, Any]) -> list[str]:
    lines = format_rules(f"chorale rules, {block['clips']} composed chorales", block["generated"])
    if "bach" in block:
        lines += format_rules(f"Bach, {block['bach']['chorales']} chorales", block["bach"])
    return lines


def format_rules(name: str, counts: RuleCounts | dict[str, Any]) -> list[str]:
    """Lines of a rules report."""
    d = counts.to_dict() if isinstance(counts, RuleCounts) else counts
    return [
        f"{name}: {d['beats']} beats, {d['chord_changes']} chord changes, {d['phrase_ends']} phrase ends",
        f"  parallel fifths/octaves  {d['parallels']} ({d['parallel_fifths']} fifths, {d['parallel_octaves']} octaves), "
        f"{d['parallels_per_100_changes']:.2f} per 100 chord changes; {d['contrary']} more by contrary motion",
        f"  voice crossings          {d['crossings']} beats, {d['crossings_per_100_beats']:.2f} per 100 beats",
        f"  out of range             {d['range_violations']} voice-beats, {d['range_violations_per_100_beats']:.2f} per 100 beats",
        f"  spacing over an octave   {d['spacing']} beats, {d['spacing_per_100_beats']:.2f} per 100 beats",
        f"  leading tones unresolved {d['unresolved_leading_tones']} of {d['leading_tones']} "
        f"({d['unresolved_leading_tone_share']:.1%})",
        f"  cadences at phrase ends  {d['cadences']} of {d['phrase_ends']} ({d['cadence_share']:.1%})",
    ]


__all__ = ["bach_rates", "check", "chorale_of_score", "format_rules", "read_chorales"]
