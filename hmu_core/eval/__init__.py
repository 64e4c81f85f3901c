"""Evaluation: the T2M evaluator (text and motion embeddings), its word vectors, the metrics
(FID, Diversity, MultiModality, R-precision, MM-Dist, MM-Notox) on its embeddings, the official
protocol, the unlearning measures and the benchmark.

Import the submodules directly: ``evaluator``, ``word_vectors``, ``metrics`` (the models and
formulas; the evaluator's trainer is ``hmu_core.train.evaluator``), ``protocol`` (repeats,
crops, mean ± 95 % CI), ``classifier`` (the numpy motion classifier the judges use),
``toxicity`` (toxicity judges, NCS@k, implicit prompts), ``safety`` (the multi-seed safety
protocol), ``naturalness``, ``report`` (``hmu eval``), ``benchmark`` (``hmu benchmark``).
This file imports nothing, so ``metrics``, ``word_vectors`` and ``classifier`` stay usable
without torch.
"""
