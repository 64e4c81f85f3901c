"""Training of the RVQ-VAE, the MoMask/BAMM transformers and the length estimator.

``hmu train vq | mask | res | bamm | length`` (``hmu_core.cli.train``) call
``vq.train_vq``, ``transformers.train_transformer`` and ``length.train_length``; presets live
in ``presets``, the shared loop (schedule, checkpoints, resume, logs) in ``loop`` and the
device/DDP setup in ``runtime``. Importing this package loads nothing heavy.
"""
