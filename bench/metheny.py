"""Leave-one-out over the five Pat Metheny pieces: does the `metheny` recipe model him better?

For each Metheny piece (four WJazzD solos and the deepjazz MIDI), the jazz checkpoint is fine-tuned
as ``chorus finetune --style metheny`` does, but without that piece; the left-out piece's
teacher-forced NLL (nats/token) under that fine-tune (player Metheny, era POSTBOP) is compared with
the general jazz model's (unconditioned, its default). The acceptance is a mean NLL at least 5%
lower.

The shipped jazz model was trained on all five pieces (they fall in the training split), so with
``--base checkpoints/jazz`` both sides have seen the left-out piece in the base training and only
the fine-tune leaves it out. ``--fair-base DIR`` first trains (once; about 35 min on 2 cores) a
jazz model on the same data without any of the five pieces, Metheny's player id kept but never
trained (`training.fit.train.TrainConfig.keep_players`), and measures against that: the general model
has then never heard him, as the left-out piece was never heard by its fine-tune.

Usage:
  python bench/metheny.py --base checkpoints/jazz --data data/jazz.json.gz [--steps N] [--threads 2] [--json FILE]
  python bench/metheny.py --fair-base /tmp/jazz-without-metheny --data data/jazz.json.gz [--json FILE]
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path


def main() -> int:
    import torch

    from engine.models.checkpoint import load_checkpoint
    from training.fit.dataset import Dataset
    from training.fit.finetune import FinetuneConfig, finetune, piece_nll, player_pieces
    from training.fit.train import Vocab

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--fair-base", type=Path, default=None,
                    help="train (if absent) and use a jazz base without the five Metheny pieces, here")
    ap.add_argument("--data", type=Path, default=Path("data/jazz.json.gz"))
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--only-embeddings", action="store_true", help="fine-tune only the era and player embeddings")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = Dataset.load(args.data)
    cfg = FinetuneConfig(**{k: v for k, v in (("steps", args.steps), ("only_embeddings", args.only_embeddings or None))
                            if v is not None})
    if args.fair_base is not None:
        args.base = args.fair_base
        if not (args.fair_base / "meta.json").is_file():
            train_fair_base(ds, cfg.player, args.fair_base)
    base = load_checkpoint(args.base)
    cond = base.meta["conditioning"]
    vocab = Vocab(tuple(cond["eras"]), tuple(cond["players"]))
    rows = []
    for piece in player_pieces(ds, cfg.player):
        model, report = finetune(base, ds, cfg, leave_out=(piece.recording,), say=lambda _: None)
        labelled = replace(piece, era=cfg.era)
        row = {"piece": piece.title, "recording": piece.recording, "tokens": len(piece.tokens),
               "jazz": piece_nll(base.model, [piece], vocab, labelled=False),
               "jazz_player_id": piece_nll(base.model, [labelled], vocab, labelled=True),
               "metheny": piece_nll(model, [labelled], vocab, labelled=True), "finetune_s": report["seconds"]}
        rows.append(row)
        print(f"{row['piece'][:40]:<42}{row['tokens']:>6} tokens  jazz {row['jazz']:.3f}  jazz+player id "
              f"{row['jazz_player_id']:.3f}  metheny {row['metheny']:.3f}  ({row['finetune_s']:.0f} s)", flush=True)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("jazz", "jazz_player_id", "metheny")}
    gain = 1 - mean["metheny"] / mean["jazz"]
    print(f"mean NLL: jazz {mean['jazz']:.3f}, jazz with the player id {mean['jazz_player_id']:.3f}, "
          f"metheny {mean['metheny']:.3f} nats/token; metheny is {gain:.1%} lower (target >= 5%)")
    if args.json:
        args.json.write_text(json.dumps({"config": cfg.__dict__, "pieces": rows, "mean": mean, "gain": gain}, indent=2))
    return 0


def train_fair_base(ds, player: str, out: Path) -> None:  # noqa: ANN001 - training.fit.dataset.Dataset
    """The jazz preset trained on ``ds`` without ``player``'s pieces (his id kept, untrained)."""
    from training.fit.dataset import Dataset
    from training.fit.finetune import player_pieces
    from training.fit.train import preset, train

    left_out = {p.recording for p in player_pieces(ds, player)}
    print(f"training the fair base without {sorted(left_out)} into {out}", flush=True)
    data = out.with_name(out.name + "-data.json.gz")
    out.parent.mkdir(parents=True, exist_ok=True)
    Dataset(ds.vocab, [p for p in ds.pieces if p.recording not in left_out], ds.sources).save(data)
    train(preset("jazz", keep_players=(player,)), data, out, device="cpu", say=lambda line: print(line, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
