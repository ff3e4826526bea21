"""Fitting: the melody model, its fine-tunes and era bias, the harmony model and the lead's
performance, from the corpora (`train`, `finetune`, `era_bias`, `harmony`, `performance`), with the
datasets and n-gram baselines they use (`dataset`, `ngram`). Never imports `training.evaluation`.
"""
