"""``chorus compose`` and ``chorus checkpoints``: the engine's own commands."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.band.arrange import PARTS
from engine.models.conditioning import ERA_CHOICES
from engine.music.forms import FORM_CHOICES


def add_parsers(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compose", help="compose a clip: audio, MIDI and a piano-roll picture")
    c.add_argument("style", help="a style with an installed checkpoint, e.g. jazz or folk")
    c.add_argument("length", help="30s, 1m30s, 90 or 2m")
    c.add_argument("--tempo", type=float, default=None, help="quarter-note bpm (default: the style picks)")
    c.add_argument("--seed", type=int, default=None, help="sampling seed (default: random, printed)")
    c.add_argument("--temperature", type=float, default=None, help="sampling temperature")
    c.add_argument("--changes", default=None, help="chords per bar, e.g. 'Dm7 G7 Cmaj7 Cmaj7' or 'Dm7 G7 | Cmaj7', "
                   "or a named progression: blues, minor blues, rhythm, ii-V-I")
    c.add_argument("--form", default=None, help=f"song form: {', '.join(FORM_CHOICES)} (default: the style's)")
    c.add_argument("--swing", type=float, default=None, help="swing ratio, 1.0 straight to 3.0 (default: by tempo)")
    c.add_argument("--feel", choices=("performed", "grid"), default=None,
                   help="performed (default: the lead as soloists play, learned from WJazzD) or grid (the notes "
                        "exactly as composed: straight, written lengths; what notation programs import cleanly)")
    c.add_argument("--key", default=None, help="key, e.g. Bb or 'F minor' (default: drawn like the style's tunes)")
    c.add_argument("--band", default=None, help="another band of the style: strings (bach; default organ)")
    # checked by ComposeRequest (not argparse's choices), so a bad era gets the same one line as on Discord
    c.add_argument("--era", default=None, metavar="{" + ",".join(ERA_CHOICES) + "}",
                   help="play it like this era of jazz (default: the style's, the mix of all for jazz)")
    c.add_argument("--seed-midi", type=Path, default=None, help="a MIDI file to continue")
    c.add_argument("--format", default="ogg", help="ogg, mp3 or flac")
    c.add_argument("--no", action="append", default=[], choices=list(PARTS),
                   help="leave a part out (repeatable)")
    c.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint folder (default: checkpoints/STYLE)")
    c.add_argument("--out", type=Path, default=Path("out"), help="folder for clip.<fmt>, clip.mid, clip.png")
    c.add_argument("--device", default=None, help="where sampling runs: auto, cpu, cuda or cuda:N "
                   "(default: CHORUS_DEVICE, else auto)")
    c.add_argument("--sheet", action="store_true",
                   help="also write the lead sheet: clip.musicxml, clip.pdf and clip-sheet.png")
    c.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    c.set_defaults(func=cmd_compose)

    k = sub.add_parser("checkpoints", help="list installed checkpoints (or pack one: chorus checkpoints pack NAME)")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_checkpoints)
    ks = k.add_subparsers(dest="action", metavar="ACTION")
    p = ks.add_parser("pack", help="write NAME as a zip for /chorus-admin install, float32 weights as float16 "
                                   "(to fit Discord's 10 MiB upload limit)")
    p.add_argument("name", help="a checkpoint folder in CHORUS_CHECKPOINTS_DIR, or a path to one")
    p.add_argument("--out", type=Path, default=None, help="the archive (default: out/NAME.zip)")
    p.add_argument("--fp32", action="store_true", help="keep float32 weights (a larger archive)")
    p.set_defaults(func=cmd_pack)


def cmd_compose(args: argparse.Namespace) -> int:
    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest, RequestError
    from engine.settings import Settings

    settings = Settings.from_env()
    composer = Composer(settings, device=args.device, preload=True, numpy=True)  # torch only for a GPU
    seed_midi = None
    if args.seed_midi is not None:
        try:
            size = args.seed_midi.stat().st_size
            if size > settings.max_seed_bytes:
                raise RequestError(f"the MIDI file is {size:,} bytes; at most {settings.max_seed_bytes:,} are accepted")
            seed_midi = args.seed_midi.read_bytes()
        except OSError as exc:
            raise RequestError(f"cannot read {args.seed_midi}: {exc.strerror or exc}") from exc
    styles = [args.style] if args.checkpoint else composer.styles()
    if args.style.lower() not in styles:  # say where it looked: CHORUS_HOME or CHORUS_CHECKPOINTS_DIR may be off
        known = ", ".join(styles) or "none"
        raise RequestError(f"no checkpoint for style {args.style!r} in {settings.checkpoints_dir} (found: {known}; "
                           "set CHORUS_CHECKPOINTS_DIR or CHORUS_HOME, or pass --checkpoint)")
    req = ComposeRequest.build(args.style, args.length, settings, styles, tempo=args.tempo, seed=args.seed,
                               temperature=args.temperature, changes=args.changes, seed_midi=seed_midi,
                               audio_format=args.format, parts=set(PARTS) - set(args.no), form=args.form,
                               key=args.key, swing=args.swing, era=args.era,
                               band=args.band, feel=args.feel)
    result = composer.compose(req, checkpoint=args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    paths = {"audio": args.out / f"clip.{result.audio_format}", "midi": args.out / "clip.mid",
             "picture": args.out / "clip.png"}
    paths["audio"].write_bytes(result.audio)
    paths["midi"].write_bytes(result.midi)
    paths["picture"].write_bytes(result.picture)
    if args.sheet:
        paths.update(_write_sheet(result.written, args.out, result.timings))
    summary = {**{k: str(v) for k, v in paths.items()}, **result.summary, "timings": result.timings}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    s = result.summary
    form = f", form {s['form']}" if s.get("form") else ""
    form += "".join(f", {k} {s[k]}" for k in ("era", "player") if s.get(k))
    print(f"{s['style']} clip, {s['seconds']:.1f} s: {s['bars']} bars of {s['meter']} at {s['tempo']:g} bpm in {s['key']}{form}")
    print(f"checkpoint {s['checkpoint']} ({s['checkpoint_hash']}), seed {s['seed']}, temperature {s['temperature']}")
    if s["continuation_starts_bar"]:
        print(f"the seed's bars come first; the continuation starts at bar {s['continuation_starts_bar']}")
    print(f"changes: {s['changes']}")
    print("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.timings.items()))
    for kind, path in paths.items():
        print(f"{kind:<8} {path}")
    return 0


def _write_sheet(written: bytes, out: Path, timings: dict[str, float]) -> dict[str, Path]:
    """Write the clip's lead sheet (MusicXML, PDF, PNG) into ``out``; its time goes in ``timings``."""
    from engine.compose.sheet import make_sheet
    from engine.music.written import Written

    sheet = make_sheet(Written.from_json(written), pdf=True)
    timings["sheet"] = round(sum(sheet.timings.values()), 4)
    paths = {"musicxml": out / "clip.musicxml", "pdf": out / "clip.pdf", "sheet": out / "clip-sheet.png"}
    paths["musicxml"].write_bytes(sheet.musicxml)
    paths["pdf"].write_bytes(sheet.pdf or b"")
    paths["sheet"].write_bytes(sheet.png)
    return paths


def cmd_checkpoints(args: argparse.Namespace) -> int:
    from engine.models.checkpoint import CheckpointError, read_meta
    from engine.settings import Settings

    root = Settings.from_env().checkpoints_dir
    rows = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if not d.is_dir():
            continue
        try:
            meta = read_meta(d)
            m = meta["metrics"]
            rows.append({"name": d.name, "style": meta.get("style"), "valid_nll": m.get("valid_nll"),
                         "ngram_nll": m.get("ngram_nll"), "size_bytes": meta.get("size_bytes"),
                         "content_hash": meta["content_hash"], "created": meta.get("created")})
        except CheckpointError as exc:
            rows.append({"name": d.name, "error": str(exc)})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            if "error" in r:
                print(f"{r['name']:<16} BROKEN: {r['error']}", file=sys.stderr)
            else:
                print(f"{r['name']:<16} style {r['style']:<6} NLL {r['valid_nll']:.3f} (n-gram {r['ngram_nll'] or float('nan'):.3f})"
                      f"  {r['size_bytes'] / 1e6:.1f} MB  {r['content_hash'][:12]}")
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from engine.formats.pack import DISCORD_UPLOAD_BYTES, pack
    from engine.models.checkpoint import CheckpointError
    from engine.settings import Settings

    folder = Path(args.name)
    if not folder.is_dir():
        folder = Settings.from_env().checkpoints_dir / args.name
    if not folder.is_dir():
        raise CheckpointError(f"no checkpoint folder {args.name!r} (looked in {folder.parent})")
    done = pack(folder, args.out or Path("out") / f"{folder.name}.zip", half=not args.fp32)
    how = f"{done.halved} float32 tensors stored as float16" if done.halved else "weights as they were"
    print(f"{done.path}: {done.archive_bytes:,} bytes ({done.archive_bytes / 2**20:.1f} MiB); weights "
          f"{done.original_weights_bytes:,} -> {done.weights_bytes:,} bytes, {how}; content hash {done.content_hash[:12]}")
    if done.archive_bytes > DISCORD_UPLOAD_BYTES:
        print(f"chorus: warning: over Discord's {DISCORD_UPLOAD_BYTES // 2**20} MiB upload limit "
              "(boosted servers allow more; or copy the folder into CHORUS_CHECKPOINTS_DIR)", file=sys.stderr)
    return 0
