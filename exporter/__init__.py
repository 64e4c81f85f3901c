"""hmu's exporter: model sets -> self-describing bundles, and the torch-free runtime that runs them.

- ``exporter.export``: ``export_bundle`` writes the ONNX graphs, tokenizer files, normalisation
  statistics and ``manifest.json`` of a bundle (needs torch and onnx);
- ``exporter.bundle``: the manifest schema and the bundle writer's helpers;
- ``exporter.runtime``: reads and checks a bundle and generates motions with numpy and
  onnxruntime only (it runs inside Blender).

This file imports nothing, so ``import exporter.runtime`` never pulls in torch (DESIGN.md §1).
"""
