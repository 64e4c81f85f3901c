"""Evaluation: the T2M evaluator (text and motion embeddings), its word vectors, the metrics
(FID, Diversity, MultiModality, R-precision, MM-Dist, MM-Notox) on its embeddings, the official
protocol, the unlearning measures and the benchmark.

Import the submodules directly: ``evaluator``, ``word_vectors``, ``metrics`` (the models and
formulas), ``train_evaluator`` (``hmu train evaluator``), ``protocol`` (repeats, crops, mean ±
95 % CI), ``toxicity`` (toxicity judges, NCS@k, implicit prompts), ``report`` (``hmu eval``),
``benchmark`` (``hmu benchmark``). This file imports nothing, so ``metrics`` and
``word_vectors`` stay usable without torch.
"""
