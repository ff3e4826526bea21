"""Players and eras in training: labels in the dataset, the metheny fine-tune, the era classifier."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.models.checkpoint import load_checkpoint
from engine.music import grammar as g
from engine.music.chords import parse_chord
from training.evaluation.style_classifier import CLASSES, EraClassifier, cross_validate, features
from training.fit.dataset import Dataset, parse_label
from training.fit.finetune import FinetuneConfig, finetune, write_finetuned


def test_pieces_carry_performer_and_era(labelled_dataset: Path) -> None:
    ds = Dataset.load(labelled_dataset)
    assert {(p.player, p.era) for p in ds.pieces} >= {("Pat Metheny", "POSTBOP"), ("Charlie Parker", "BEBOP")}
    assert parse_label("midi:original_metheny=Pat Metheny/postbop") == ("midi:original_metheny", "Pat Metheny", "POSTBOP")


def test_metheny_finetune_writes_a_metheny_checkpoint_with_the_base_parts(
        tiny_conditioned_checkpoint: Path, labelled_dataset: Path, tmp_path: Path) -> None:
    base = load_checkpoint(tiny_conditioned_checkpoint)
    model, report = finetune(base, Dataset.load(labelled_dataset), FinetuneConfig(steps=3, batch_size=4, seq_len=32),
                             say=lambda _: None)
    meta = write_finetuned(tmp_path / "metheny", base, model, report, "metheny")
    ck = load_checkpoint(tmp_path / "metheny")
    assert ck.style == "metheny" and meta["sampling"]["player"] == "Pat Metheny"
    assert ck.meta["conditioning"] == base.meta["conditioning"] and ck.extra.keys() == base.extra.keys()
    assert report["pieces"] and all(r.startswith("wjazzd:") for r in report["pieces"])


def _piece(step: int, seed: int) -> g.QPiece:
    """Eighth notes (step 6) or triplets (step 4) on a C7 chord, a random walk of pitches."""
    rng = np.random.default_rng(seed)
    pitches = 64 + np.cumsum(rng.integers(-3, 4, 48))
    notes = [g.QNote(i * step, step, int(p)) for i, p in enumerate(pitches)]
    return g.QPiece(bars=[(0, (4, 4))], changes=[(0, parse_chord("C7"))], notes=notes)


def test_the_era_classifier_learns_a_rhythmic_difference() -> None:
    assert features(_piece(6, 0)) is not None and features(g.QPiece()) is None
    x = np.array([features(_piece(6 if i % 2 else 4, i)) for i in range(40)])
    y = np.array([CLASSES.index("BEBOP") if i % 2 else CLASSES.index("SWING") for i in range(40)])
    assert cross_validate(x, y)["accuracy"] > 0.9
    clf = EraClassifier.fit(x, y)
    assert CLASSES[clf.predict(features(_piece(4, 99))[None])[0]] == "SWING"


def test_a_kept_player_has_an_id_without_training_pieces() -> None:
    """`TrainConfig.keep_players`: a base for a leave-out test keeps the player's id (untrained)."""
    from types import SimpleNamespace

    from training.fit.train import Vocab

    pieces = [SimpleNamespace(player="Chet Baker")] * 4 + [SimpleNamespace(player="Pat Metheny")]
    assert Vocab.of(pieces, 4).players == ("", "Chet Baker")
    assert Vocab.of(pieces, 4, keep=("Pat Metheny",)).players == ("", "Chet Baker", "Pat Metheny")
    assert Vocab.of([], 4, keep=("Pat Metheny",)).players == ("", "Pat Metheny")
