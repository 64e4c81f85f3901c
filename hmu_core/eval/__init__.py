"""Evaluation: the T2M evaluator (text and motion embeddings), its word vectors, and the metrics
(FID, Diversity, MultiModality, R-precision, MM-Dist, MM-Notox) computed on its embeddings.

Import the submodules directly (``hmu_core.eval.evaluator``, ``hmu_core.eval.word_vectors``,
``hmu_core.eval.metrics``); this file imports nothing, so ``metrics`` stays usable without torch.
"""
