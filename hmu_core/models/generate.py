"""Text -> ``Motion``: lengths, seeded token sampling, VQ decoding, de-normalisation.

The pipeline of ``gen_t2m.py`` (reference/momask.md §5) over hmu's seeded sampler
(``hmu_core.models.sampling``): prompts are encoded once; lengths come from seconds (20 fps,
4 frames a token, 40..196 frames), else from the length estimator (MoMask, sampled from the
request's stream) or from BAMM's own END token; base and residual layers are sampled; each
request is decoded alone (``forward_decoder`` over its own tokens, so a clip never depends on
the rest of its batch; upstream decodes the padded batch), de-normalised with the VQ's meta
``mean``/``std`` and turned into a ``Motion`` whose provenance names the model, seed and knobs.

The model set (where its parts are, how they load) is ``hmu_core.models.model_set``;
``load_generator`` puts a text encoder beside its networks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.data.datasets import denormalize
from hmu_core.errors import ConfigError, MotionError
from hmu_core.models import sampling as S
from hmu_core.models.model_set import LoadedModelSet, ModelSet, load_model_set
from hmu_core.motion.motion import Motion
from hmu_core.motion.skeleton import FEATURE_DIM, FPS
from hmu_core.text.registry import load_text_encoder

log = logging.getLogger(__name__)

UNIT_LENGTH = 4  # frames per token (the VQ downsamples time by 4)
MIN_TOKENS, MAX_TOKENS = 10, 49  # 40..196 frames: HumanML3D's clip lengths


def tokens_from_seconds(seconds: float, fps: float = FPS) -> int:
    """Token length for a duration: ``round(seconds * fps / 4)``, which must lie in [10, 49].

    Raises:
        ConfigError: non-finite, or outside 40..196 frames (2.0..9.8 s at 20 fps).
    """
    return S.tokens_from_seconds(seconds, fps, UNIT_LENGTH, MIN_TOKENS, MAX_TOKENS)


@dataclass
class MotionGenerator:
    """A loaded model set ready to sample: networks, text encoder, optional length estimator.

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


Generation = S.Generation


def encode_prompts(encoder: Any, prompts: list[str]) -> np.ndarray:
    """``(N, D)`` float32 condition vectors, checked finite."""
    with torch.no_grad():
        feats = encoder.encode(list(prompts))
    cond = np.asarray(feats.cpu() if isinstance(feats, torch.Tensor) else feats, np.float32)
    if cond.ndim != 2 or cond.shape[0] != len(prompts) or not np.isfinite(cond).all():
        raise ConfigError(f"the text encoder returned {cond.shape} vectors for {len(prompts)} "
                          f"prompts (or non-finite ones); expected ({len(prompts)}, D) finite")
    return cond


def _lengths(gen: MotionGenerator, cond: np.ndarray, seconds: float | Sequence[float] | None,
             streams: S.RequestStreams, tokens: Sequence[int] | None = None
             ) -> tuple[np.ndarray | None, str]:
    lens, source = S.request_lengths(seconds, tokens, len(cond), fps=FPS,
                                     unit_length=UNIT_LENGTH, min_tokens=MIN_TOKENS,
                                     max_tokens=MAX_TOKENS)
    if lens is not None:
        return lens, source
    if gen.kind == "bamm":
        return None, "bamm_end_token"
    est = gen.length_estimator
    if est is None:
        raise ConfigError("no duration given and the model set has no length estimator; pass "
                          "seconds (--seconds) or add a length_estimator/ directory")
    with torch.no_grad():
        logits = est.eval()(torch.from_numpy(cond).to(next(est.parameters()).device))
    logits = logits.float().cpu().numpy()
    return S.sample_token_lengths(logits, streams, MIN_TOKENS, MAX_TOKENS), "length_estimator"


def sample_tokens(gen: MotionGenerator, cond: np.ndarray, lengths: np.ndarray | None,
                  streams: S.RequestStreams, params: S.SamplingParams
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Base and residual layers for ``(B, D)`` conditions: ``(ids (B, n, layers), lengths)``,
    ``-1`` at padding. ``lengths`` None is only valid for BAMM (it predicts them)."""
    trans, res = gen.pipeline.trans, gen.pipeline.res
    if gen.kind == "bamm":  # lengths None: BAMM predicts them
        base, lens = S.sample_bamm_base(bamm_step_from_torch(trans), cond, lengths, streams,
                                        params, end_id=trans.end_id, pad_id=trans.pad_id)
    else:
        if lengths is None:
            raise ConfigError("MoMask needs token lengths")
        lens = np.asarray(lengths, np.int64)
        base = S.sample_momask_base(mask_step_from_torch(trans), cond, lens, streams, params,
                                    mask_id=trans.mask_id, pad_id=trans.pad_id)
    if res is None:
        return np.where(np.arange(base.shape[1])[None] < lens[:, None], base, -1)[..., None], lens
    ids = S.sample_residual(res_step_from_torch(res), base, cond, lens, streams, params,
                            pad_id=res.pad_id, num_quantizers=res.num_quantizers)
    return ids, lens


def generate_tokens(gen: MotionGenerator, texts: list[str], streams: S.RequestStreams,
                    params: S.SamplingParams, *, seconds: float | Sequence[float] | None = None,
                    tokens: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Checked prompts -> ``(ids (B, n, layers), lengths (B,), length source)``, no decoding
    (the token statistics of ``hmu unlearn --stats generated`` need nothing more).

    Raises:
        ConfigError: as :func:`generate_motions`.
    """
    cond = encode_prompts(gen.text_encoder, texts)
    lengths, source = _lengths(gen, cond, seconds, streams, tokens)
    ids, lens = sample_tokens(gen, cond, lengths, streams, params)
    return ids, lens, source


def decode_tokens(gen: MotionGenerator, tokens: np.ndarray) -> np.ndarray:
    """``(len, layers)`` codes of one request -> ``(4 len, 263)`` de-normalised features."""
    vq = gen.pipeline.vq.eval()
    with torch.no_grad():
        x = vq.forward_decoder(torch.from_numpy(tokens[None]).to(next(vq.parameters()).device))[0]
    return denormalize(x.float().cpu().numpy(), gen.pipeline.mean, gen.pipeline.std)


def generate_motions(gen: MotionGenerator, prompts: str | Sequence[str], *,
                     seconds: float | Sequence[float] | None = None, seed: int = 0,
                     seeds: Sequence[int] | None = None,
                     params: S.SamplingParams | None = None,
                     tokens: Sequence[int] | None = None) -> Generation:
    """Prompts -> motions, one request per prompt, batched.

    Args:
        prompts: one text or a list.
        seconds: one duration for all, one per prompt, or None (length estimator / BAMM END).
        seed: request i uses ``seed + i`` (so it equals prompt i generated alone with that
            seed); ``seeds`` gives every request's seed explicitly instead.
        params: sampling knobs (official defaults).
        tokens: token lengths (frames // 4, 1..49), one per prompt, instead of ``seconds``:
            the evaluation protocol generates with the ground-truth lengths, which may fall
            below the 10 tokens a duration may ask for (a 40-frame clip cropped by one unit).
    Returns:
        ``Generation`` with one ``Motion`` (20 fps, features and joints) per prompt.
    Raises:
        ConfigError: empty prompt, bad seed, duration or knob; MotionError: non-finite output.
    """
    texts = S.check_prompts(prompts)
    params = params or S.SamplingParams()
    streams = S.RequestStreams.from_seed(seed, len(texts)) if seeds is None else \
        S.RequestStreams(seeds)
    if len(streams) != len(texts):
        raise ConfigError(f"got {len(streams)} seeds for {len(texts)} prompts")
    ids, lens, source = generate_tokens(gen, texts, streams, params, seconds=seconds,
                                        tokens=tokens)
    motions, tokens = [], []
    encoder_name = getattr(gen.text_encoder, "name", type(gen.text_encoder).__name__)
    for b, text in enumerate(texts):
        codes = np.ascontiguousarray(ids[b, : int(lens[b])])
        feats = decode_tokens(gen, codes)
        if not np.isfinite(feats).all():
            raise MotionError(f"prompt {b} decoded to non-finite features: broken VQ weights "
                              f"or meta statistics")
        provenance = {**gen.source, "model_kind": gen.kind, "seed": streams.seeds[b],
                      "sampling": params.to_dict(), "token_length": int(lens[b]),
                      "length_source": source, "text_encoder": encoder_name}
        motions.append(Motion.from_features(feats, text=text, fps=FPS, provenance=provenance))
        tokens.append(codes)
    log.info("generated %d motion(s), lengths %s tokens", len(motions), lens.tolist())
    return Generation(motions=motions, tokens=tokens)


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
# torch adapters: the networks as hmu_core.models.sampling step callables. Each puts its model
# in eval mode (dropout off, as the official eval_no_grad) and runs without grad.


def _on(device: torch.device) -> Any:
    return lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a)).to(device)


def _out(logits: torch.Tensor) -> np.ndarray:
    return logits.permute(0, 2, 1).float().cpu().numpy()  # (B, V, n) -> (B, n, V)


def mask_step_from_torch(model: nn.Module) -> S.MaskStep:
    """A ``MaskStep`` over a ``MaskTransformer`` (``trans_forward``)."""
    t = _on(model.cond_emb.weight.device)
    model.eval()

    def step(ids: np.ndarray, cond: np.ndarray, padding_mask: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return _out(model.trans_forward(t(ids), t(cond), t(padding_mask)))

    return step


def res_step_from_torch(model: nn.Module) -> S.ResStep:
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


def bamm_step_from_torch(model: nn.Module) -> S.BAMMStep:
    """A ``BAMMStep`` over a ``BAMMTransformer`` (the sampler builds the doubled CFG batch)."""
    t = _on(model.cond_emb.weight.device)
    model.eval()

    def step(ids: np.ndarray, cond: np.ndarray, cond_idx: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            return _out(model.trans_forward(t(ids), t(cond), None, False, cond_idx=t(cond_idx)))

    return step
