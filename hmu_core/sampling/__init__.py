"""Text -> tokens -> ``Motion``, torch-free: the one request loop of both worlds.

Runs inside Blender's Python and the onnxruntime runtime (numpy only; a test imports it with
torch made unimportable, and the Blender add-on vendors it). Modules, from the outside in:

- ``loop``: ``generate(backend, prompts, ...)``: checks, lengths, streams, sampling, decoding,
  ``Motion`` and provenance; its docstring is the random-stream contract;
- ``backend``: the ``Backend`` protocol a world implements (torch: ``hmu_core.models.generate``,
  onnxruntime: ``exporter.runtime.generator``) and its ``ModelFacts``;
- ``samplers``: MoMask mask-predict, BAMM two-pass, residual layers, length draws;
- ``lengths``: the token range and durations (4 frames a token, 10..49 tokens, 20 fps);
- ``params``, ``prompts``, ``streams``: sampling knobs, prompt checks, one stream per request.
"""
