"""hmu's exporter: model sets -> self-describing bundles, and the torch-free runtime that runs them.

- ``exporter.export``: ``export_bundle`` writes the ONNX graphs, tokenizer files, normalisation
  statistics and ``manifest.json`` of a bundle (needs torch and onnx);
- ``exporter.bundle``: the bundle writer's helpers (the schema is ``exporter.runtime.schema``);
- ``exporter.signing``: ed25519 key pairs and bundle signatures (``hmu keygen``, ``hmu sign``);
- ``exporter.clips``: clip libraries from a prompt file (``hmu clips``);
- ``exporter.scene``: everything that writes Blender data (the add-on's and ``hmu clips``');
- ``exporter.demo``: ``hmu demo``, the application on top of both worlds;
- ``exporter.runtime``: reads and checks a bundle (fields, hashes, digest, trusted signatures)
  and generates motions with numpy and onnxruntime only (it runs inside Blender).

This file imports nothing, so ``import exporter.runtime`` never pulls in torch (DESIGN.md §1).
"""
