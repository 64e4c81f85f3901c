"""Text encoders that condition the MoMask/BAMM transformers.

- ``clip_tokenizer``: CLIP's BPE tokenizer, pure Python + numpy (runs in the torch-free
  runtime too), equal to ``clip.tokenize``;
- ``clip_text``: the CLIP ViT-B/32 text tower in torch, loaded from a user's weights file;
- ``torchscript_weights``: reads the tensors of a TorchScript archive (OpenAI's
  ``ViT-B-32.pt``) with an allow-list unpickler, without running it;
- ``minilm``: the offline default encoder (all-MiniLM-L6-v2, 384-d);
- ``registry``: ``load_text_encoder("clip:/path/ViT-B-32.pt" | "minilm")``.

This file imports nothing, so ``import hmu_core.text.clip_tokenizer`` stays torch-free.
"""
