"""Unlearning methods: LCR (codebook rows), code suppression (transformer heads), UCE and RECE
(``cond_emb`` weights), fine-tuning and retraining on the retain set. Each is one function of
``hmu_core.unlearn.sets`` that writes a model set in the official layout plus
``unlearning.json`` (``hmu_core.unlearn.record``) through ``hmu_core.models.model_set``."""
