"""Code suppression (hmu's own method): the transformers can never emit the selected codes.

LCR rewrites codebook rows, so a toxic token still gets sampled and decodes to whatever the
safe code means (on the embedded model: running away). Suppression leaves the VQ alone and
changes what the transformers predict: the output logit of each selected code of RVQ layer q
gets a large negative bias in the head that predicts layer q (the base transformer for q = 0,
the residual transformer for q >= 1), so its probability is exactly 0 after the softmax and a
Gumbel draw can never reach it. The model then picks among the codes it still may use, the
ones its own training ranked next for the text. It is a plain weight edit: the official loaders,
``hmu export`` and the torch-free runtime run the edited set unchanged.

Heads (momask.md §7 items 7, 12):

- MaskTransformer / BAMMTransformer: ``output_process.poseFinal`` is a Linear with a bias of
  ``num_tokens`` (BAMM: ``num_tokens + 1``, the last is END, never touched) entries.
- ResidualTransformer: the released ``share_weight=True`` layout ties the output projection
  of layer q to the input embedding of layer q + 1 and has no bias. The set is rewritten in the
  official unshared layout (``share_weight=False``: ``output_proj_weight``,
  ``token_embed_weight``, ``output_proj_bias``), whose logits are ``2 W h + b`` (the official
  ``output += output + bias``); storing ``W / 2`` (exact in binary floating point) with
  ``b = 0`` gives bit-identical logits, then the bias carries the suppression.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from hmu_core.errors import ConfigError
from hmu_core.models.res_transformer import ResidualTransformer
from hmu_core.unlearn.record import tensor_edit

SUPPRESSION_BIAS = -1.0e9
"""Added to a suppressed code's logit. After CFG (``u + (c - u) s`` in float32, both terms
carrying it) and any temperature up to 1e6 it is still below -1e3, so ``exp`` underflows to
exactly 0 in float32 and float64 and a Gumbel draw (at most ~37) cannot lift it; it stays far
from float32's overflow (3.4e38) even at guidance scales in the thousands."""

BASE_HEAD = "output_process.poseFinal.bias"
RESIDUAL_BIAS = "output_proj_bias"


def _check_codes(codes: Sequence[int], num_tokens: int, where: str) -> torch.Tensor:
    index = torch.as_tensor(list(codes), dtype=torch.int64)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= num_tokens):
        raise ConfigError(f"{where}: codes must lie in 0..{num_tokens - 1}, got "
                          f"{index.tolist()}")
    if index.unique().numel() != index.numel():
        raise ConfigError(f"{where}: codes repeat: {index.tolist()}")
    return index


def suppress_base(model: nn.Module, codes: Sequence[int]) -> dict[str, str] | None:
    """Bias the base transformer's logits of ``codes`` (layer 0) down, in place.

    Works for MaskTransformer and BAMMTransformer (their END logit, index ``num_tokens``, is
    out of the codes' range and never touched). Returns the record's edit entry, None when
    ``codes`` is empty.

    Raises:
        ConfigError: a code outside the codebook or repeated.
    """
    index = _check_codes(codes, int(model.config.num_tokens), "base layer")
    if index.numel() == 0:
        return None
    bias = model.output_process.poseFinal.bias
    before = bias.detach().clone()
    with torch.no_grad():
        bias[index] += SUPPRESSION_BIAS
    return tensor_edit("trans", BASE_HEAD, before, bias)


def unshared_residual(model: ResidualTransformer) -> ResidualTransformer:
    """The same residual transformer in the official unshared layout, bit-identical logits.

    A model already unshared is returned as a copy. The new model is in eval mode on the
    source's device and keeps its text encoder.
    """
    config = dataclasses.replace(model.config, share_weight=False)
    # Every tensor comes from the state below; the throw-away initialisation leaves the global
    # generator alone. (Building on the meta device instead costs a 1.3 s import of torch's
    # decompositions, 16 times this build.)
    with torch.random.fork_rng(devices=[]):
        out = ResidualTransformer(config)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if model.share_weight:
        for key in ("embed_proj_shared_weight", "token_embed_weight_", "output_proj_weight_"):
            del state[key]
        # 2 * (W / 2) == W exactly: halving only changes the exponent.
        state["output_proj_weight"] = model.output_proj_weight.detach().clone() / 2
        state["token_embed_weight"] = model.token_embed_weight.detach().clone()
        state[RESIDUAL_BIAS] = torch.zeros(config.num_quantizers, config.num_tokens + 1,
                                           dtype=state["output_proj_weight"].dtype)
    out.load_state_dict(state, strict=True, assign=True)
    out.attach_text_encoder(model.text_encoder)
    return out.eval()


def suppress_residual(model: ResidualTransformer,
                      codes: Mapping[int, Sequence[int]]) -> list[dict[str, str]]:
    """Bias the residual logits of ``codes[q]`` (layers q >= 1) down, in place.

    ``model`` must be unshared (:func:`unshared_residual`). Returns one edit entry (the whole
    bias table), or none when no code is given.

    Raises:
        ConfigError: a shared-weight model, layer 0 or a layer the model lacks, bad codes.
    """
    if model.share_weight:
        raise ConfigError("suppress_residual needs the unshared layout; call "
                          "unshared_residual first")
    bias = model.output_proj_bias
    before = bias.detach().clone()
    layers = int(model.config.num_quantizers)
    touched = False
    for q, layer_codes in codes.items():
        if not 1 <= q < layers:
            raise ConfigError(f"residual layer {q}: the model predicts layers 1..{layers - 1}")
        index = _check_codes(layer_codes, int(model.config.num_tokens), f"layer {q}")
        if index.numel():
            with torch.no_grad():
                bias[q - 1, index] += SUPPRESSION_BIAS  # output_project reads bias[q - 1]
            touched = True
    return [tensor_edit("res", RESIDUAL_BIAS, before, bias)] if touched else []
