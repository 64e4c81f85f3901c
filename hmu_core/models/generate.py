"""Text -> ``Motion`` over torch modules: the torch backend of the request loop, and model sets.

``MotionGenerator`` is a loaded model set (networks, text encoder, optional length estimator)
that implements ``hmu_core.sampling.backend.Backend`` in a few lines: each step is a network
call on numpy arrays, run without grad in eval mode. ``generate_motions`` runs the one request
loop (``hmu_core.sampling.loop``: checks, lengths, seeded sampling, per-request decoding,
provenance) over it, exactly as the onnxruntime runtime does over a bundle; MoMask's guided
steps keep upstream's two calls (cond, then null), so its logits are bit-equal to
``forward_with_cond_scale``.

Model set (``resolve_model_set``): a directory ``DIR`` holding ``vq/``, ``trans/`` or ``bamm/``,
optionally ``res/`` and ``length_estimator/`` (each in the official layout), and optionally
``hmu.json``: ``{"format": "hmu-model-set", "version": 1, "vq": "vq", "trans": "trans", "res":
"res", "length_estimator": "length_estimator", "text_encoder": "minilm"}`` (paths relative to
DIR). Text-encoder spec, first found: the explicit one, hmu.json's, ``minilm``. (hmu's trainers
record the encoder's *name* in opt.txt, not a spec, so it is not read; a wrong encoder is caught
by its width, with a message naming the right spec.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.atomic import write_json
from hmu_core.data.datasets import denormalize
from hmu_core.errors import ConfigError
from hmu_core.models.bamm_transformer import MAX_TOKEN_LEN
from hmu_core.models.checkpoints import load_model_dir
from hmu_core.models.pipeline import Pipeline, load_pipeline
from hmu_core.motion.skeleton import FEATURE_DIM
from hmu_core.sampling.backend import ModelFacts
from hmu_core.sampling.loop import Generation, generate
from hmu_core.sampling.params import SamplingParams
from hmu_core.sampling.samplers import BAMMStep, MaskStep, ResStep


@dataclass
class MotionGenerator:
    """A loaded model set ready to sample: networks, text encoder, optional length estimator;
    the torch ``Backend`` of ``hmu_core.sampling.loop``.

    ``text_encoder`` has ``name``, ``dim`` and ``encode(list[str]) -> (N, dim)`` float32
    (``hmu_core.text``); ``source`` is copied into every motion's provenance.
    """

    pipeline: Pipeline
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

# ---------------------------------------------------------------------------------------------
# model sets

MODEL_SET_FILE = "hmu.json"
MODEL_SET_FORMAT = "hmu-model-set"
DEFAULT_TEXT_ENCODER = "minilm"
_PARTS = ("vq", "trans", "res", "length_estimator")


@dataclass(frozen=True)
class ModelSet:
    """Where a model set's parts are; ``res``/``length_estimator`` may be absent (None)."""

    vq: Path
    trans: Path
    res: Path | None = None
    length_estimator: Path | None = None
    text_encoder: str = DEFAULT_TEXT_ENCODER
    root: Path | None = None


def _check_parts(parts: dict[str, Any]) -> None:
    if set(parts) - set(_PARTS):
        raise ConfigError(f"unknown model part(s) {sorted(set(parts) - set(_PARTS))}; known: "
                          f"{list(_PARTS)}")


def resolve_model_set(model_dir: str | os.PathLike | None = None, *,
                      text_encoder: str | None = None, **parts: str | os.PathLike | None
                      ) -> ModelSet:
    """Read ``DIR/hmu.json`` (or find ``vq/``, ``trans/`` or ``bamm/``, ``res/``,
    ``length_estimator/``); ``parts`` (``vq=``, ``trans=``, ...) override single paths.

    Raises:
        ConfigError: no such directory, a broken hmu.json, or no VQ / base transformer.
    """
    _check_parts(parts)
    found: dict[str, Any] = {}
    spec = None
    root = None if model_dir is None else Path(model_dir)
    if root is not None:
        if not root.is_dir():
            raise ConfigError(f"model directory {root} not found")
        manifest = root / MODEL_SET_FILE
        if manifest.is_file():
            try:
                data = json.loads(manifest.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{manifest}: not valid JSON ({exc})") from None
            if not isinstance(data, dict) or data.get("format") != MODEL_SET_FORMAT:
                raise ConfigError(f"{manifest}: not a model set (needs \"format\": "
                                  f"\"{MODEL_SET_FORMAT}\")")
            found = {k: root / data[k] for k in _PARTS if data.get(k)}
            spec = data.get("text_encoder")
        else:
            bases = [root / n for n in ("trans", "bamm") if (root / n).is_dir()]
            if len(bases) > 1:
                raise ConfigError(f"{root} holds both trans/ and bamm/; name one in hmu.json "
                                  f"or pass --trans")
            found = {k: root / k for k in ("vq", "res", "length_estimator") if (root / k).is_dir()}
            found.update({"trans": bases[0]} if bases else {})
    found.update({k: Path(v) for k, v in parts.items() if v is not None})
    for key in ("vq", "trans"):
        if key not in found:
            where = f"in {root}" if root is not None else "(no --model DIR given)"
            raise ConfigError(f"no {key} model {where}: a model set needs vq/ and trans/ "
                              f"(or bamm/) directories, or pass --{key}")
    for key, path in found.items():
        if not path.is_dir():
            raise ConfigError(f"{key} directory {path} not found")
    return ModelSet(vq=found["vq"], trans=found["trans"], res=found.get("res"),
                    length_estimator=found.get("length_estimator"),
                    text_encoder=text_encoder or spec or DEFAULT_TEXT_ENCODER, root=root)


def load_text_encoder(spec: str) -> Any:
    """``hmu_core.text.registry.load_text_encoder(spec)``, with a clear error if absent."""
    try:
        from hmu_core.text.registry import load_text_encoder as load
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("hmu_core.text"):
            raise
        raise ConfigError(f"text encoder {spec!r}: hmu_core.text is not installed in this "
                          f"checkout; update hmu") from None
    return load(spec)


def load_generator(models: ModelSet, *, text_encoder: Any = None,
                   device: str = "cpu") -> MotionGenerator:
    """Load every part of ``models`` (eval mode) and the text encoder (or use the one given)."""
    pipeline = load_pipeline(models.vq, models.trans, models.res, device=device)
    estimator = None if models.length_estimator is None else load_model_dir(
        models.length_estimator, "length_estimator", device=device).model
    encoder = text_encoder if text_encoder is not None else load_text_encoder(models.text_encoder)
    source = {"model_dir": None if models.root is None else str(models.root),
              "vq": str(models.vq), "trans": str(models.trans),
              "res": None if models.res is None else str(models.res),
              "text_encoder_spec": models.text_encoder}
    return MotionGenerator(pipeline=pipeline, text_encoder=encoder, length_estimator=estimator,
                           source=source)


def write_model_set(model_dir: str | os.PathLike, *, text_encoder: str,
                    **parts: str | None) -> Path:
    """Write ``DIR/hmu.json`` naming the parts (paths relative to ``DIR``), atomically."""
    _check_parts(parts)
    record = {"format": MODEL_SET_FORMAT, "version": 1, "text_encoder": text_encoder,
              **{k: str(v) for k, v in parts.items() if v is not None}}
    write_json(Path(model_dir) / MODEL_SET_FILE, record)
    return Path(model_dir) / MODEL_SET_FILE



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
