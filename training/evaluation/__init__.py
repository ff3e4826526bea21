"""Evaluation: how a checkpoint's music measures against the real pieces.

The melody model's held-out NLL and style metrics (`melody`, `metrics`), harmony and form
(`harmony`, `harmony_metrics`), eras (`styles`, `style_classifier`), chorales (`chorale`) and
realism (`realism`): the blocks of ``chorus eval``. Imports `training.fit` and `training.corpus`.
"""
