"""Text -> ``Motion`` over torch modules: the torch backend of the request loop, and model sets.

``MotionGenerator`` is a loaded model set (networks, text encoder, optional length estimator)
that implements ``hmu_core.sampling.backend.Backend`` in a few lines: each step is a network
call on numpy arrays, run without grad in eval mode. ``generate_motions`` runs the one request
loop (``hmu_core.sampling.loop``: checks, lengths, seeded sampling, per-request decoding,
provenance) over it, exactly as the onnxruntime runtime does over a bundle; MoMask's guided
steps keep upstream's two calls (cond, then null), so its logits are bit-equal to
``forward_with_cond_scale``.

The model set (where its parts are, how they load) is ``hmu_core.models.model_set``;
``load_generator`` puts a text encoder beside its networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.data.datasets import denormalize
from hmu_core.errors import ConfigError
from hmu_core.models.bamm_transformer import MAX_TOKEN_LEN
from hmu_core.models.model_set import LoadedModelSet, ModelSet, load_model_set
from hmu_core.motion.skeleton import FEATURE_DIM
from hmu_core.sampling.backend import ModelFacts
from hmu_core.sampling.loop import Generation, generate
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.samplers import BAMMStep, MaskStep, ResStep
from hmu_core.text.registry import load_text_encoder


@dataclass
class MotionGenerator:
    """A loaded model set ready to sample: networks, text encoder, optional length estimator;
    the torch ``Backend`` of ``hmu_core.sampling.loop``.

    ``text_encoder`` has ``name``, ``dim`` and ``encode(list[str]) -> (N, dim)`` float32
    (``hmu_core.text``); ``source`` is copied into every motion's provenance.
    """

    pipeline: LoadedModelSet
    text_encoder: Any
    length_estimator: nn.Module | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        trans = self.pipeline.trans
        dim = getattr(self.text_encoder, "dim", None)
        if not callable(getattr(self.text_encoder, "encode", None)):
            raise ConfigError("the text encoder needs an encode(list[str]) method")
        if dim is not None and int(dim) != trans.clip_dim:
            raise ConfigError(
                f"text encoder {getattr(self.text_encoder, 'name', '?')!r} gives {dim}-d "
                f"vectors but the model was trained on {trans.clip_dim}-d ones; pass the "
                f"encoder it was trained with (official checkpoints: clip:/path/ViT-B-32.pt)"
            )
        if self.pipeline.mean.shape[0] != FEATURE_DIM:
            raise ConfigError(f"the VQ makes {self.pipeline.mean.shape[0]}-d features; "
                              f"generation needs HumanML3D's {FEATURE_DIM}")
        est = self.length_estimator
        if est is not None and est.config.input_size != trans.clip_dim:
            raise ConfigError(f"the length estimator reads {est.config.input_size}-d text "
                              f"vectors, the transformer {trans.clip_dim}-d; they do not match")

    @property
    def kind(self) -> str:
        """``momask`` or ``bamm``."""
        return "bamm" if self.pipeline.trans_kind == "bamm_transformer" else "momask"

    # -- the Backend protocol (hmu_core.sampling.backend) ------------------------------------

    @property
    def facts(self) -> ModelFacts:
        trans, res = self.pipeline.trans, self.pipeline.res
        return ModelFacts(
            kind=self.kind, num_quantizers=self.pipeline.vq.config.num_quantizers,
            has_res=res is not None, has_length_estimator=self.length_estimator is not None,
            mask_id=trans.mask_id, pad_id=trans.pad_id, end_id=getattr(trans, "end_id", None),
            res_pad_id=None if res is None else res.pad_id, bamm_slots=MAX_TOKEN_LEN,
            text_encoder=getattr(self.text_encoder, "name", type(self.text_encoder).__name__))

    def encode(self, texts: list[str]) -> np.ndarray:
        return encode_prompts(self.text_encoder, texts)

    def base_step(self, ids: np.ndarray, cond: np.ndarray, extra: np.ndarray | None
                  ) -> np.ndarray:
        make = bamm_step_from_torch if self.kind == "bamm" else mask_step_from_torch
        return make(self.pipeline.trans)(ids, cond, extra)

    def res_step(self, ids: np.ndarray, cond: np.ndarray, padding: np.ndarray) -> np.ndarray:
        return res_step_from_torch(self.pipeline.res)(ids, cond, padding)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        vq = self.pipeline.vq.eval()
        with torch.no_grad():
            x = vq.forward_decoder(_on(next(vq.parameters()).device)(codes[None]))[0]
        return denormalize(x.float().cpu().numpy(), self.pipeline.mean, self.pipeline.std)

    def length_logits(self, cond: np.ndarray) -> np.ndarray:
        est = self.length_estimator.eval()
        with torch.no_grad():
            return est(_on(next(est.parameters()).device)(cond)).float().cpu().numpy()

    def provenance(self) -> dict[str, Any]:
        return dict(self.source)


def encode_prompts(encoder: Any, prompts: list[str]) -> np.ndarray:
    """``(N, D)`` float32 condition vectors, checked finite."""
    with torch.no_grad():
        feats = encoder.encode(list(prompts))
    cond = np.asarray(feats.cpu() if isinstance(feats, torch.Tensor) else feats, np.float32)
    if cond.ndim != 2 or cond.shape[0] != len(prompts) or not np.isfinite(cond).all():
        raise ConfigError(f"the text encoder returned {cond.shape} vectors for {len(prompts)} "
                          f"prompts (or non-finite ones); expected ({len(prompts)}, D) finite")
    return cond


def generate_motions(gen: MotionGenerator, prompts: str | Sequence[str], *,
                     seconds: float | Sequence[float] | np.ndarray | None = None,
                     seed: int = 0, seeds: Sequence[int] | None = None,
                     params: SamplingParams | None = None,
                     tokens: Sequence[int] | np.ndarray | None = None) -> Generation:
    """Prompts -> motions with torch: ``hmu_core.sampling.loop.generate`` over ``gen`` (its
    docstring has the arguments; the runtime's ``Generator.generate`` is the same call)."""
    return generate(gen, prompts, seconds=seconds, seed=seed, seeds=seeds, params=params,
                    tokens=tokens)

def load_generator(models: ModelSet | LoadedModelSet, *, text_encoder: Any = None,
                   device: str = "cpu") -> MotionGenerator:
    """A generator over a model set: loaded here (eval mode) when given on disk, shared when
    already loaded; with ``text_encoder``, else the one the set names.

    Raises:
        ConfigError / CheckpointError: as ``load_model_set``; ConfigError: no encoder for a
            set built in memory, or one of the wrong width.
    """
    loaded = models if isinstance(models, LoadedModelSet) else load_model_set(models,
                                                                             device=device)
    if text_encoder is None and loaded.models is None:
        raise ConfigError("a model set built in memory names no text encoder; pass one")
    encoder = text_encoder if text_encoder is not None else \
        load_text_encoder(loaded.models.text_encoder)
    return MotionGenerator(pipeline=loaded, text_encoder=encoder,
                           length_estimator=loaded.length_estimator,
                           source={} if loaded.models is None else loaded.models.provenance())



# ---------------------------------------------------------------------------------------------
# torch steps: the networks as hmu_core.sampling.samplers step callables (the exporter checks
# its graphs against them too). Each puts its model in eval mode (dropout off, as the official
# eval_no_grad) and runs without grad.


def _on(device: torch.device) -> Any:
    return lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _out(logits: torch.Tensor) -> np.ndarray:
    return logits.permute(0, 2, 1).float().cpu().numpy()  # (B, V, n) -> (B, n, V)


def mask_step_from_torch(model: nn.Module) -> MaskStep:
    """A ``MaskStep`` over a ``MaskTransformer`` (``trans_forward``)."""
    t = _on(model.cond_emb.weight.device)
    model.eval()

    def step(ids: np.ndarray, cond: np.ndarray, padding_mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return _out(model.trans_forward(t(ids), t(cond), t(padding_mask)))

    return step


def res_step_from_torch(model: nn.Module) -> ResStep:
    """A ``ResStep`` over a ``ResidualTransformer``; the history is summed in the official
    order (``0 + e_0[ids_0] + e_1[ids_1] + ...``), so logits are bit-equal to upstream's."""
    device = model.cond_emb.weight.device
    t = _on(device)
    model.eval()

    def step(layer_ids: np.ndarray, cond: np.ndarray, padding_mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ids, table, history = t(layer_ids), model.token_embed_weight, 0
            for j in range(ids.shape[-1]):
                history = history + F.embedding(ids[..., j], table[j])
            qids = torch.full((ids.shape[0],), ids.shape[-1], dtype=torch.long, device=device)
            feats = model.trans_forward(history, qids, t(cond), t(padding_mask))
            return _out(model.output_project(feats, qids - 1))

    return step


def bamm_step_from_torch(model: nn.Module) -> BAMMStep:
    """A ``BAMMStep`` over a ``BAMMTransformer`` (the sampler builds the doubled CFG batch)."""
    t = _on(model.cond_emb.weight.device)
    model.eval()

    def step(ids: np.ndarray, cond: np.ndarray, cond_idx: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            return _out(model.trans_forward(t(ids), t(cond), None, False, cond_idx=t(cond_idx)))

    return step
