"""A small era classifier for ``chorus eval``: does a clip asked for in an era sound like that era?

Features of a melody (one vector per piece, every part a normalised histogram, so pieces of any
length compare):

- intervals between successive notes, -12..+12 semitones and two bins for larger leaps (27);
- inter-onset times on the 12-per-beat grid, in 10 classes from a sixteenth to over two beats (10);
- note durations, the same 10 classes (10);
- onset position inside the beat, 12 grid places (triplets, sixteenths, swung eighths) (12);
- pitch class relative to the sounding chord's root (12);
- bigrams of interval direction classes (big down, step down, repeat, step up, big up) (25);
- notes per beat, mean pitch and pitch spread, scaled (3).

The classifier is a multinomial logistic regression (softmax, L2 penalty, class weights inversely
proportional to class size so the large POSTBOP class does not swamp the rest), fitted with
scipy's L-BFGS on standardised features. Its held-out accuracy comes from stratified k-fold
cross-validation over the real training solos (the validation split has no BEBOP solo).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from engine.music import grammar as g

CLASSES: tuple[str, ...] = ("SWING", "BEBOP", "COOL", "HARDBOP", "POSTBOP", "FUSION")
_TIME_EDGES = np.array([2, 3, 4, 6, 8, 11, 12, 18, 24])  # grid units (12 per beat): class = bins by these edges


def _hist(values: np.ndarray, bins: int) -> np.ndarray:
    h = np.bincount(values, minlength=bins)[:bins].astype(float)
    return h / max(h.sum(), 1.0)


def features(piece: g.QPiece) -> np.ndarray | None:
    """The feature vector of a piece on the grid, or None with fewer than 8 notes."""
    notes = sorted(piece.notes, key=lambda n: n.onset)
    if len(notes) < 8:
        return None
    pitch = np.array([n.pitch for n in notes])
    onset = np.array([n.onset for n in notes])
    dur = np.array([n.dur for n in notes])
    iv = np.diff(pitch)
    iv_bins = np.where(iv > 12, 25, np.where(iv < -12, 26, iv + 12))
    ioi = np.diff(onset)
    beat = g.GRID
    roots = _roots_at(piece, onset)
    rel = np.where(roots >= 0, (pitch - roots) % 12, 0)
    dir_cls = np.digitize(iv, [-3, 0, 1, 3])  # 0: <= -3 ... 4: >= 3; 2 is a repeat
    bigram = dir_cls[:-1] * 5 + dir_cls[1:]
    span_beats = max((onset[-1] + dur[-1] - onset[0]) / beat, 1.0)
    scalars = np.array([len(notes) / span_beats / 4.0, (pitch.mean() - 66) / 12, pitch.std() / 12])
    return np.concatenate([
        _hist(iv_bins, 27), _hist(np.digitize(ioi, _TIME_EDGES, right=True), 10),
        _hist(np.digitize(dur, _TIME_EDGES, right=True), 10), _hist(onset % beat, beat),
        _hist(rel[roots >= 0], 12), _hist(bigram, 25), scalars])


def _roots_at(piece: g.QPiece, onsets: np.ndarray) -> np.ndarray:
    """Root pitch class of the chord sounding at each onset (-1 for none)."""
    times = np.array([t for t, _ in piece.changes]) if piece.changes else np.zeros(0)
    roots = np.array([c.root if c.root is not None else -1 for _, c in piece.changes]) if piece.changes else np.zeros(0)
    if not len(times):
        return np.full(len(onsets), -1)
    idx = np.searchsorted(times, onsets, side="right") - 1
    return np.where(idx >= 0, roots[np.clip(idx, 0, None)], -1)


@dataclass
class EraClassifier:
    """Standardisation and softmax weights; `predict` returns class indices into `CLASSES`."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # (F + 1, C), the last row the bias

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> EraClassifier:
        mean, scale = x.mean(0), x.std(0) + 1e-6
        z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
        n_cls = len(CLASSES)
        counts = np.bincount(y, minlength=n_cls).astype(float)
        w_sample = (len(y) / (n_cls * np.maximum(counts, 1)))[y]
        onehot = np.eye(n_cls)[y]

        def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = flat.reshape(z.shape[1], n_cls)
            logits = z @ w
            logits -= logits.max(1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(1, keepdims=True)
            nll = -(w_sample * np.log(p[np.arange(len(y)), y] + 1e-12)).sum() / len(y)
            grad = z.T @ ((p - onehot) * w_sample[:, None]) / len(y)
            pen = w[:-1]
            grad[:-1] += l2 * pen / len(y)
            return nll + 0.5 * l2 * float((pen ** 2).sum()) / len(y), grad.ravel()

        res = minimize(loss, np.zeros(z.shape[1] * n_cls), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        return cls(mean, scale, res.x.reshape(z.shape[1], n_cls))

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.hstack([(x - self.mean) / self.scale, np.ones((len(x), 1))])
        return np.argmax(z @ self.weights, axis=1)


def dataset(pieces: list[tuple[g.QPiece, str]]) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix and class indices of (piece, WJazzD style) pairs in `CLASSES`; others dropped."""
    xs, ys = [], []
    for piece, era in pieces:
        f = features(piece) if era in CLASSES else None
        if f is not None:
            xs.append(f)
            ys.append(CLASSES.index(era))
    return np.array(xs), np.array(ys, dtype=np.int64)


def cross_validate(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    """Stratified k-fold accuracy, balanced accuracy and the confusion table (rows: true era)."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), dtype=int)
    for c in range(len(CLASSES)):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    pred = np.zeros_like(y)
    for k in range(folds):
        test = fold_of == k
        pred[test] = EraClassifier.fit(x[~test], y[~test]).predict(x[test])
    return scores(y, pred)


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    n_cls = len(CLASSES)
    conf = np.zeros((n_cls, n_cls), dtype=int)
    np.add.at(conf, (y, pred), 1)
    recall = [conf[c, c] / conf[c].sum() for c in range(n_cls) if conf[c].sum()]
    majority = np.bincount(y, minlength=n_cls).max() / max(len(y), 1)
    return {"n": int(len(y)), "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
            "balanced_accuracy": float(np.mean(recall)) if recall else float("nan"),
            "chance": 1 / n_cls, "majority_share": float(majority),
            "classes": list(CLASSES), "confusion": conf.tolist()}


def format_confusion(conf: list[list[int]], rows: str = "true") -> list[str]:
    head = f"{rows + ' / assigned':<18}" + "".join(f"{c.lower():>9}" for c in CLASSES)
    return [head] + [f"{CLASSES[i].lower():<18}" + "".join(f"{v:>9}" for v in row) for i, row in enumerate(conf)]
