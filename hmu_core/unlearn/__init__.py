"""Unlearning methods: LCR (codebook rows), UCE and RECE (``cond_emb`` weights), fine-tuning
and retraining on the retain set. Each produces a model directory in the official layout plus
``unlearning.json`` (``hmu_core.unlearn.record``)."""
