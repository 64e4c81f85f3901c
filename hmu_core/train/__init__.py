"""Training of the RVQ-VAE, the MoMask/BAMM transformers, the length estimator and the T2M
evaluator.

``hmu train vq | mask | res | bamm | length | evaluator`` (``hmu_core.cli.train``) call
``vq.train_vq``, ``transformers.train_transformer``, ``length.train_length`` and
``evaluator.train_evaluator``; presets live
in ``presets``, the shared loop (schedule, checkpoints, resume, logs) in ``loop`` and the
device/DDP setup in ``runtime``. Importing this package loads nothing heavy.
"""
