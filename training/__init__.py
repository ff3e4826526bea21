"""Training and evaluation: the corpora (`training.corpus`), fitting the models (`training.fit`),
measuring them (`training.evaluation`), and the ``chorus`` subcommands for both (`training.cli`).
"""
