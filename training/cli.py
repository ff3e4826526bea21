"""``chorus corpus …``: statistics, tokenised datasets and downloads of the corpora."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    corpus = sub.add_parser("corpus", help="read, tokenise and fetch the corpora")
    csub = corpus.add_subparsers(dest="corpus_cmd", required=True, metavar="{stats,build,fetch,rules}")
    src_help = "KIND=PATH with KIND one of wjazzd, midi, nottingham, bach (repeatable)"

    stats = csub.add_parser("stats", help="count pieces, measures, notes and tokens")
    stats.add_argument("--source", action="append", required=True, help=src_help)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=cmd_stats)

    build = csub.add_parser("build", help="write a tokenised dataset split by recording")
    build.add_argument("--source", action="append", required=True, help=src_help)
    build.add_argument("--out", required=True, type=Path, help="output file (.json or .json.gz)")
    build.add_argument("--valid-fraction", type=float, default=0.1, help="share of recordings held out")
    build.add_argument("--label", action="append", default=[],
                       help="RECORDING=PERFORMER/ERA for a piece whose source carries no labels, e.g. "
                            "'midi:original_metheny=Pat Metheny/POSTBOP' (repeatable)")
    build.set_defaults(func=cmd_build)

    fetch = csub.add_parser("fetch", help="download a corpus from the URLs in its PROVENANCE.md")
    fetch.add_argument("name", help="wjazzd, deepjazz_metheny, nottingham, jazzstandards_ireal, ...")
    fetch.add_argument("--dest", required=True, type=Path, help="folder to write the corpus into")
    fetch.add_argument("--provenance", type=Path, default=None,
                       help="a corpus folder whose <name>/PROVENANCE.md gives the URL (default: built in)")
    fetch.set_defaults(func=cmd_fetch)


    rules = csub.add_parser("rules", help="the chorale rules measured on Bach's own chorales")
    rules.add_argument("--source", required=True,
                       help="bach=DIR: music21's corpus/bach folder (bach=music21 finds it) or a folder of chorales")
    rules.add_argument("--json", action="store_true", help="print one JSON object")
    rules.set_defaults(func=cmd_rules)


def cmd_rules(args: argparse.Namespace) -> int:
    from training.evaluation.chorale import bach_rates, format_rules

    source = _bach_source(args.source)
    kind, _, path = source.partition("=")
    if kind != "bach":
        print(f"chorus: error: --source must be bach=DIR, got {args.source!r}", file=sys.stderr)
        return 2
    result = bach_rates(Path(path), say=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(format_rules(f"Bach, {result['chorales']} chorales ({result['skipped']} skipped)", result)))
        for s in result["skipped_files"]:
            print(f"  skipped {s['path']}: {s['reason']}")
    return 0 if result["chorales"] else 2


def _bach_source(spec: str) -> str:
    """``bach=music21`` names music21's own corpus/bach folder."""
    if spec.strip() == "bach=music21":
        from training.corpus.bach import music21_bach_dir

        return f"bach={music21_bach_dir()}"
    return spec


def add_train_parsers(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser("train", help="train a model from a tokenised dataset")
    from engine.band.styles import STYLES

    tr.add_argument("--preset", required=True, help=f"a style ({', '.join(STYLES)}) or tiny")
    tr.add_argument("--data", required=True, type=Path, help="dataset from chorus corpus build")
    tr.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    tr.add_argument("--resume", type=Path, default=None, help="continue an interrupted run from this folder")
    tr.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    tr.add_argument("--epochs", type=int, default=None, help="override the preset's max epochs")
    tr.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    tr.add_argument("--init", type=Path, default=None,
                    help="warm start from this checkpoint's weights (new era/player inputs start at zero)")
    tr.add_argument("--lr", type=float, default=None, help="override the preset's learning rate")
    tr.add_argument("--max-minutes", type=float, default=None, help="override the preset's time budget")
    tr.set_defaults(func=cmd_train)
    add_harmony_parser(sub)
    ft = sub.add_parser("finetune", help="fine-tune a conditioned checkpoint on one player (e.g. the metheny style)")
    ft.add_argument("--style", required=True, help="the style the new checkpoint is for, e.g. metheny")
    ft.add_argument("--base", required=True, type=Path, help="the conditioned checkpoint to start from (e.g. checkpoints/jazz)")
    ft.add_argument("--data", required=True, type=Path, help="the base's dataset (chorus corpus build)")
    ft.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    ft.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the FinetuneConfig's)")
    ft.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ft.set_defaults(func=cmd_finetune)
    tp = sub.add_parser("train-performance", help="learn how soloists place and hold their notes from WJazzD's "
                        "performed timing and write it into a checkpoint (training/fit/performance.py)")
    tp.add_argument("--into", required=True, type=Path, help="the checkpoint folder (trained on WJazzD solos)")
    tp.set_defaults(func=cmd_train_performance)
    eb = sub.add_parser("era-bias", help="fit each era's bias on the logits of a trained jazz model (training/fit/era_bias.py)")
    eb.add_argument("--checkpoint", required=True, type=Path, help="the era-conditioned checkpoint to add the bias to")
    eb.add_argument("--data", required=True, type=Path, help="its dataset (chorus corpus build)")
    eb.add_argument("--guidance", type=float, default=None, help="era guidance stored as the sampling default")
    eb.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    eb.set_defaults(func=cmd_era_bias)


def cmd_train_performance(args: argparse.Namespace) -> int:
    from engine.settings import Settings
    from training.fit.performance import install_performance

    install_performance(args.into, Settings.from_env().corpus_dir, say=print)
    return 0


def cmd_era_bias(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from training.fit.era_bias import EraBiasConfig, fit_into

    if args.threads:
        torch.set_num_threads(args.threads)
    from engine.band.styles import get_style
    from engine.models.checkpoint import read_meta

    guidance = args.guidance if args.guidance is not None else get_style(read_meta(args.checkpoint)["style"]).sampling.guidance
    cfg = dataclasses.replace(EraBiasConfig(), guidance=guidance)
    fit_into(args.checkpoint, args.data, cfg, say=print)
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from engine.band.styles import get_style
    from engine.models.checkpoint import load_checkpoint
    from training.fit.dataset import Dataset
    from training.fit.finetune import FinetuneConfig, finetune, write_finetuned

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = dict(get_style(args.style).training.get("finetune", {}))
    cfg = FinetuneConfig(player=spec.get("player", FinetuneConfig.player), era=spec.get("era", FinetuneConfig.era))
    if args.steps:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    base = load_checkpoint(args.base)
    model, report = finetune(base, Dataset.load(args.data), cfg, say=print)
    meta = write_finetuned(args.out, base, model, report, args.style)
    print(f"fine-tuned {args.base} on {len(report['pieces'])} pieces of {cfg.player} in {report['seconds'] / 60:.1f} min; "
          f"checkpoint {args.out} ({meta['size_bytes'] / 1e6:.1f} MB)")
    return 0


def add_harmony_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-harmony", help="train a style's harmony model into its checkpoint")
    p.add_argument("--style", choices=("folk", "jazz", "bach"), required=True)
    p.add_argument("--into", required=True, type=Path, help="the style's checkpoint folder (its melody model is kept)")
    p.add_argument("--corpus-dir", type=Path, default=None, help="corpora folder (default CHORUS_CORPUS_DIR)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--time-budget-s", type=float, default=1800.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature stored as the default")
    p.add_argument("--top-p", type=float, default=0.95)
    p.set_defaults(func=cmd_train_harmony)


def cmd_train_harmony(args: argparse.Namespace) -> int:
    from engine.settings import Settings
    from training.fit.harmony import train_into

    train_into(args.style, args.into, args.corpus_dir or Settings.from_env().corpus_dir, args.epochs,
               args.time_budget_s, args.seed, args.temperature, args.top_p, say=print)
    return 0


def add_eval_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="held-out NLL and style metrics of a checkpoint")
    ev.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    ev.add_argument("--source", action="append", required=True, help="reference pieces, KIND=PATH (repeatable)")
    ev.add_argument("--samples", type=int, default=20, help="pieces to generate")
    ev.add_argument("--temperature", type=float, default=None, help="default: the checkpoint's")
    ev.add_argument("--top-p", type=float, default=None, help="default: the checkpoint's")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--clips", type=int, default=None,
                    help="clips composed for the harmony and form metrics (default 30 jazz, 20 folk) or the "
                         "chorale rules (default 50 bach); 0 skips them")
    ev.add_argument("--era-clips", type=int, default=10,
                    help="clips sampled per era for the era check of a conditioned checkpoint (0 skips it)")
    ev.add_argument("--guidance", type=float, default=None, help="era guidance for the era check (default: the checkpoint's)")
    ev.add_argument("--realism", type=int, default=None,
                    help="held-out WJazzD solos and as many clips for the realism test (default 51 for a checkpoint "
                         "trained on WJazzD; 0 skips it)")
    ev.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from engine.models.checkpoint import load_checkpoint
    from training.evaluation.melody import EvalSettings, evaluate, format_report

    ck = load_checkpoint(args.checkpoint)
    _, report = _read(args.source)
    console = _stderr_console()
    result = evaluate(ck, report.sheets, EvalSettings(args.samples, args.temperature, args.top_p, args.seed),
                      say=lambda line: console.print(line, highlight=False))
    result["harmony"] = _harmony(ck, report.sheets, args.clips, console)
    result["style"] = _style(ck, report.sheets, args.era_clips, args.seed, console, args.guidance)
    result["chorale"] = _chorale(ck, [_bach_source(s) for s in args.source], args.clips, console)
    result["realism"] = _realism(ck, args.realism, args.seed, console)
    text = format_report(result)
    if not args.json and result["chorale"]:
        from training.evaluation.chorale import format_chorale

        text += "\n" + "\n".join(format_chorale(result["chorale"]))
    if not args.json and result["style"]:
        from training.evaluation.styles import format_style

        text += "\n" + "\n".join(format_style(result["style"]))
    if not args.json and result["harmony"]:
        from training.evaluation.harmony import format_harmony

        text += "\n" + "\n".join(format_harmony(result["harmony"]))
    if not args.json and result["realism"]:
        from training.evaluation.realism import format_realism

        text += "\n" + "\n".join(format_realism(result["realism"]))
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


def _style(ck, sheets, clips: int, seed: int, console, guidance: float | None = None) -> dict | None:
    """The era block (`training.evaluation.styles`), or None for a checkpoint without eras."""
    from training.evaluation.styles import style_block

    if clips <= 0:
        return None
    return style_block(ck, sheets, clips, seed=seed, say=lambda line: console.print(line, highlight=False),
                       guidance=guidance)


def _chorale(ck, sources: list[str], clips: int | None, console) -> dict | None:
    """The chorale rules block (`training.evaluation.chorale`), for a style whose band sings chorales."""
    from engine.band.styles import STYLES
    from training.evaluation.chorale import chorale_block

    style = STYLES.get(ck.style)
    clips = 50 if clips is None else clips
    if style is None or not style.band.chorale or clips <= 0:
        return None
    return chorale_block(ck, sources, clips, say=lambda line: console.print(line, highlight=False))


def _realism(ck, solos: int | None, seed: int, console) -> dict | None:
    """The realism block (`training.evaluation.realism`), for a checkpoint trained on WJazzD solos."""
    from engine.settings import Settings
    from training.evaluation.realism import realism_report

    corpus = Settings.from_env().corpus_dir
    trained = set(ck.meta.get("corpus", {}).get("train_recordings", []))
    solos = 51 if solos is None else solos
    if solos <= 0 or not any(r.startswith("wjazzd:") for r in trained) or not (corpus / "wjazzd" / "index.csv").is_file():
        return None
    console.print(f"realism: {solos} held-out solos against as many clips, composition and performance", highlight=False)
    return realism_report(ck.path, trained, corpus, solos, seed)


def _harmony(ck, sheets, clips: int | None, console) -> dict | None:
    """The harmony and form block, or None without a harmony model or the reference charts."""
    from engine.settings import Settings
    from training.corpus.reference_charts import IREAL_FILE
    from training.evaluation.harmony import harmony_block
    from training.evaluation.melody import held_out

    corpus = Settings.from_env().corpus_dir
    clips = {"jazz": 30, "folk": 20}.get(ck.style, 20) if clips is None else clips
    if ck.harmony is None or clips <= 0 or not (corpus / IREAL_FILE).is_file():
        return None
    console.print(f"composing {clips} {ck.style} clips for the harmony and form metrics", highlight=False)
    return harmony_block(ck, ck.style, held_out(ck, sheets)[0], corpus, clips)


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from training.fit.train import preset, train

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: v for k, v in {"max_epochs": args.epochs, "lr": args.lr, "max_minutes": args.max_minutes,
                                   "init_from": str(args.init) if args.init else None}.items() if v is not None}
    cfg = preset(args.preset, **overrides)
    console = _stderr_console()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task("epoch", total=1, info="")

        def progress(done: int, total: int, loss: float, tps: float) -> None:
            bar.update(task, completed=done, total=total, info=f"loss {loss:.3f}  {tps:,.0f} tokens/s")

        def say(line: str) -> None:
            bar.console.print(line, highlight=False, soft_wrap=True)
            print(line, flush=True) if not sys.stdout.isatty() else None

        train(cfg, args.data, args.out, resume=args.resume, device=args.device, say=say, progress=progress)
    return 0


def _read(specs: list[str]):
    from rich.progress import Progress

    from training.corpus import Source, read_sources

    sources = [Source.parse(_bach_source(s)) for s in specs]
    with Progress(transient=True, console=_stderr_console()) as bar:
        task = bar.add_task("reading", total=None)
        report = read_sources(sources, progress=lambda done, total: bar.update(task, completed=done, total=total))
    return sources, report


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def corpus_stats(report) -> dict:
    """The statistics printed by ``chorus corpus stats`` (a JSON-ready dict)."""
    from engine.music import grammar

    kinds: Counter[str] = Counter()
    durations: Counter[str] = Counter()
    measures = notes = tokens = 0
    unencodable = []
    for sheet in report.sheets:
        measures += len(sheet.measures)
        notes += sheet.note_count
        try:
            toks = grammar.encode(sheet)
        except Exception as exc:  # noqa: BLE001 - reported per piece below
            unencodable.append({"path": sheet.source or sheet.title, "reason": str(exc)})
            continue
        tokens += len(toks)
        for t in toks:
            tok = grammar.parse_token(t)
            kinds[tok.ntype or tok.kind] += 1
            if tok.kind in ("note", "rest", "hold"):
                durations[f"{tok.dur / grammar.GRID:g}"] += 1
    total = sum(kinds.values()) or 1
    dtotal = sum(durations.values()) or 1
    first = report.sheets[0] if report.sheets else None
    return {
        "pieces_read": len(report.sheets),
        "pieces_skipped": len(report.skipped),
        "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        "unencodable": unencodable,
        "measures": measures,
        "notes": notes,
        "tokens": tokens,
        "vocab_size": len(grammar.VOCAB),
        "token_types": {k: round(v / total, 4) for k, v in kinds.most_common()},
        "durations_beats": {k: round(v / dtotal, 4) for k, v in durations.most_common(12)},
        "first_piece": first.title if first else None,
        "chords": first.chord_labels(8) if first else [],
    }


def cmd_stats(args: argparse.Namespace) -> int:
    _, report = _read(args.source)
    stats = corpus_stats(report)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(f"pieces read      {stats['pieces_read']}")
        print(f"pieces skipped   {stats['pieces_skipped']}")
        for s in stats["skipped"]:
            print(f"  skipped {s['path']}: {s['reason']}")
        for key in ("measures", "notes", "tokens", "vocab_size"):
            print(f"{key:<16} {stats[key]}")
        print("token types      " + ", ".join(f"{k} {v:.1%}" for k, v in stats["token_types"].items()))
        print("durations (beats) " + ", ".join(f"{k}: {v:.1%}" for k, v in stats["durations_beats"].items()))
        if stats["first_piece"]:
            print(f"first 8 bars of {stats['first_piece']!r}: | " + " | ".join(stats["chords"]) + " |")
    if not report.sheets:
        print(f"chorus: error: no piece could be read ({len(report.skipped)} skipped)", file=sys.stderr)
        return 2
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from training.fit.dataset import build, parse_label

    labels = {rec: (player, era) for rec, player, era in map(parse_label, args.label)}
    _, report = _read(args.source)
    if not report.sheets:
        print(f"chorus: error: no piece could be read ({len(report.skipped)} skipped)", file=sys.stderr)
        return 2
    ds, left_out = build(report.sheets, args.source, args.valid_fraction, labels)
    for title, reason in left_out:
        print(f"left out {title}: {reason}", file=sys.stderr)
    ds.save(args.out)
    train, valid = ds.split("train"), ds.split("valid")
    print(f"wrote {args.out}: {len(train)} train pieces ({sum(len(p.tokens) for p in train)} tokens), "
          f"{len(valid)} validation pieces ({sum(len(p.tokens) for p in valid)} tokens), "
          f"{len(report.skipped)} skipped; fingerprint {ds.fingerprint[:12]}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from training.corpus.fetch import fetch

    report = fetch(args.name, args.dest, provenance_dir=args.provenance)
    print(f"fetched {report.name} from {report.url}: {len(report.files)} files, {report.bytes:,} bytes into {report.dest}")
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
