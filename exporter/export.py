"""``export_bundle``: a MoMask/BAMM model set -> a bundle directory (DESIGN.md §5).

Every stage is exported with the legacy TorchScript exporter from the wrappers of
``exporter.graphs`` (dynamic batch and length axes), passes ``onnx.checker.check_model``, and
is run in onnxruntime on random inputs of two different shapes and compared with the torch
model's own forward (the step adapters of ``hmu_core.models.generate``) before the bundle is
committed. The whole directory is written with ``atomic_directory``: an interrupted or failed
export leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from exporter import graphs
from exporter import quantize as quantization
from exporter.bundle import GraphSpec, check_session_io, graph_specs, write_manifest
from exporter.runtime.bundle import read_bundle_unsigned
from exporter.runtime.sessions import open_session
from exporter.runtime.text import make_tokenizer
from exporter.signing import load_private_key, sign_bundle
from hmu_core.atomic import atomic_directory, save_npy
from hmu_core.errors import BundleError, ConfigError
from hmu_core.models import generate as gen
from hmu_core.models.bamm_transformer import MAX_TOKEN_LEN
from hmu_core.models.model_set import ModelSet, load_model_set, resolve_model_set
from hmu_core.motion.skeleton import FPS
from hmu_core.sampling.lengths import MAX_TOKENS, MIN_TOKENS
from hmu_core.sampling.params import SamplingParams
from hmu_core.text.registry import load_text_encoder

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
ATOL, RTOL = 2e-4, 1e-4  # torch vs onnxruntime, float32 (measured ~1e-6 on real sizes)


def _text_encoder_parts(encoder: Any) -> tuple[str, nn.Module, dict[str, Path], int, int]:
    """``(tokenizer kind, export module, tokenizer source files, max ids, vocabulary size)``
    of an encoder (the vocabulary size is its token-embedding rows, which the runtime holds
    the bundle's tokenizer files to)."""
    from hmu_core.text.clip_text import CLIPTextEncoder
    from hmu_core.text.minilm import MAX_SEQ_LENGTH, MiniLMEncoder

    if isinstance(encoder, MiniLMEncoder):
        return "bert-wordpiece", graphs.MiniLMGraph(encoder.model), \
            {"tokenizer_json": encoder.model_dir / "tokenizer.json"}, MAX_SEQ_LENGTH, \
            encoder.model.config.vocab_size
    if isinstance(encoder, CLIPTextEncoder):
        if encoder.tower.dtype != torch.float32:
            raise ConfigError("only an fp32 CLIP text encoder can be exported; load it with "
                              "precision='fp32'")
        return "clip-bpe", graphs.CLIPGraph(encoder.tower), {"bpe": encoder.tokenizer.vocab_path}, \
            encoder.tower.config.context_length, encoder.tower.config.vocab_size
    raise ConfigError(f"text encoder {type(encoder).__name__} cannot be exported; use 'minilm' "
                      f"or 'clip:/path/ViT-B-32.pt'")


def _write_tokenizer(tmp: Path, kind: str, sources: dict[str, Path]) -> dict[str, str]:
    """Copy the tokenizer files into ``tmp/tokenizer``; returns manifest names."""
    folder = tmp / "tokenizer"
    folder.mkdir()
    if kind == "clip-bpe":
        shutil.copyfile(sources["bpe"], folder / sources["bpe"].name)
        return {"bpe": f"tokenizer/{sources['bpe'].name}"}
    raw = json.loads(sources["tokenizer_json"].read_text(encoding="utf-8"))
    model, norm = raw.get("model", {}), raw.get("normalizer") or {}
    if model.get("type") != "WordPiece" or norm.get("type") != "BertNormalizer" \
            or not norm.get("lowercase", False) or model.get("continuing_subword_prefix") != "##":
        raise ConfigError(f"{sources['tokenizer_json']}: only an uncased BERT WordPiece "
                          f"tokenizer (all-MiniLM-L6-v2's) can be exported")
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        raise ConfigError(f"{sources['tokenizer_json']}: vocabulary ids are not 0..N-1")
    (folder / "vocab.txt").write_text("".join(f"{tok}\n" for tok, _ in vocab), encoding="utf-8")
    return {"vocab": "tokenizer/vocab.txt"}


def _export(module: nn.Module, args: tuple, spec: GraphSpec, path: Path, opset: int) -> None:
    axes = {t.name: {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
            for t in (*spec.inputs, *spec.outputs)}
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                          input_names=[t.name for t in spec.inputs],
                          output_names=[t.name for t in spec.outputs],
                          dynamic_axes={k: v for k, v in axes.items() if v})
    onnx.checker.check_model(str(path), full_check=True)


def _compare(stage: str, got: np.ndarray, want: np.ndarray, where: np.ndarray | None = None
             ) -> float:
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    if got.shape != want.shape:
        raise BundleError(f"export check of {stage}: onnxruntime gives {got.shape}, torch "
                          f"{want.shape}; this is a bug in hmu's exporter")
    if where is not None:
        got, want = got[where], want[where]
    err = float(np.abs(got - want).max()) if got.size else 0.0
    if not np.allclose(got, want, atol=ATOL, rtol=RTOL):
        raise BundleError(f"export check of {stage}: onnxruntime differs from torch by {err:.3g} "
                          f"(tolerance {ATOL}); this is a bug in hmu's exporter")
    return err


def _cpu_session(path: Path) -> Any:
    """A CPU session that leaves sizing the process's shared pool to the runtime."""
    return open_session(path, "cpu", None, claim_pool=False)[0]


def _check(stage: str, path: Path, cases: list[quantization.Case]) -> float:
    session = _cpu_session(path)
    return max(_compare(stage, session.run(None, feeds)[0], want, where)
               for feeds, want, where in cases)


_exported_text_graph: dict[str, tuple[bytes, float]] = {}
"""The last text-encoder graph this process exported, by ``_text_graph_key``, with its check
error. Bundles of one model set and its unlearned copies share the text encoder, and its
export is most of a bundle's (1.5 of 2.5 s for MiniLM); its checks draw no random inputs, so
reusing it changes no other stage's checks."""


def _text_graph_key(module: nn.Module, text_spec: dict[str, Any], opset: int) -> str:
    """sha256 over what the exported text graph depends on: the wrapper, its weights, the
    tokenizer entry of the manifest and the opset."""
    digest = hashlib.sha256(f"{type(module).__qualname__}/{opset}/".encode())
    digest.update(json.dumps(text_spec, sort_keys=True, default=str).encode())
    for name, tensor in module.state_dict().items():
        digest.update(name.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _pad_mask(lens: list[int], width: int) -> np.ndarray:
    return np.arange(width)[None, :] >= np.array(lens)[:, None]


def _export_stages(tmp: Path, specs: dict[str, GraphSpec], pipe: Any, estimator: Any,
                   encoder: Any, text_module: nn.Module, text_spec: dict[str, Any], opset: int,
                   seed: int, quantize: str | None = None
                   ) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Export and check every stage, quantizing ``exporter.quantize.STAGES`` if asked.

    Returns the largest torch-vs-ORT error per stage (of the float32 graph) and each
    quantized graph's check against torch.
    """
    rng = np.random.default_rng(seed)
    trans, res, vq = pipe.trans, pipe.res, pipe.vq
    dim = trans.clip_dim
    errors: dict[str, float] = {}
    quantized: dict[str, dict[str, Any]] = {}

    def cond(b: int) -> np.ndarray:
        return rng.standard_normal((b, dim)).astype(np.float32)

    def t(*arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in arrays)

    def stage(name: str, module: nn.Module, example: tuple[np.ndarray, ...],
              cases: Callable[[], list], reuse_key: str | None = None) -> None:
        path = tmp / specs[name].file
        if reuse_key is not None and reuse_key in _exported_text_graph:
            graph, errors[name] = _exported_text_graph[reuse_key]
            path.write_bytes(graph)
            checks = None
        else:
            _export(module, t(*example), specs[name], path, opset)
            checks = cases()
            errors[name] = _check(name, path, checks)
            if reuse_key is not None:
                _exported_text_graph.clear()
                _exported_text_graph[reuse_key] = (path.read_bytes(), errors[name])
        if quantize is not None and name in quantization.STAGES[quantize]:
            quantized[name] = quantization.quantize_stage(
                quantize, path, cases() if checks is None else checks, _cpu_session)

    # text encoder: real prompts through the runtime's tokenizer, vs the torch encoder
    prompts = [["a person walks forward and waves"],
               ["someone jumps twice, then sits down!", "a man kicks with his left leg"]]
    tokenize = make_tokenizer(tmp, text_spec)
    feeds0 = tokenize(prompts[1])
    stage("text_encoder", text_module, tuple(feeds0.values()),
          lambda: [(tokenize(p), gen.encode_prompts(encoder, p), None) for p in prompts],
          reuse_key=_text_graph_key(text_module, text_spec, opset))

    if pipe.trans_kind == "bamm_transformer":
        step = gen.bamm_step_from_torch(trans)

        def bamm_case(b: int, s: int, with_idx: bool) -> tuple:
            ids = rng.integers(0, trans.num_tokens + 2, (b, s)).astype(np.int64)
            idx = np.where(rng.random((b, s)) < 0.4, ids, trans.pad_id).astype(np.int64)
            c = cond(b)
            feeds = {"ids": ids, "cond": c,
                     "cond_idx": idx if with_idx else np.full_like(ids, trans.pad_id)}
            return feeds, step(ids, c, idx if with_idx else None), None

        ex = bamm_case(2, 7, True)[0]
        stage("base", graphs.BAMMStepGraph(trans), (ex["ids"], ex["cond"], ex["cond_idx"]),
              lambda: [bamm_case(2, 7, True), bamm_case(3, 12, False), bamm_case(1, 5, True)])
    else:
        step = gen.mask_step_from_torch(trans)

        def mask_case(lens: list[int]) -> tuple:
            pad = _pad_mask(lens, max(lens))
            ids = rng.integers(0, trans.num_tokens + 1, pad.shape).astype(np.int64)
            ids = np.where(pad, trans.pad_id, ids)
            c = cond(len(lens))
            return {"ids": ids, "cond": c, "padding_mask": pad}, step(ids, c, pad), ~pad

        ex = mask_case([6, 4])[0]
        stage("base", graphs.MaskStepGraph(trans), (ex["ids"], ex["cond"], ex["padding_mask"]),
              lambda: [mask_case([6, 4]), mask_case([11, 3, 9]), mask_case([5])])

    if res is not None:
        res_step = gen.res_step_from_torch(res)

        def res_case(lens: list[int], layers: int) -> tuple:
            pad = _pad_mask(lens, max(lens))
            ids = rng.integers(0, res.num_tokens, (len(lens), max(lens), layers))
            ids = np.where(pad[..., None], res.pad_id, ids).astype(np.int64)
            c = cond(len(lens))
            return ({"ids": ids, "cond": c, "padding_mask": pad}, res_step(ids, c, pad),
                    ~pad)

        ex = res_case([6, 4], 2)[0]
        stage("res", graphs.ResStepGraph(res), (ex["ids"], ex["cond"], ex["padding_mask"]),
              lambda: [res_case([6, 4], 2), res_case([9, 3, 7], 1),
                       res_case([5], res.num_quantizers - 1)])

    q = vq.config.num_quantizers

    def dec_case(b: int, n: int) -> tuple:
        ids = rng.integers(0, vq.config.nb_code, (b, n, q)).astype(np.int64)
        ids[rng.random((b, n, q)) < 0.2] = -1
        with torch.no_grad():
            want = vq.forward_decoder(torch.from_numpy(ids)).numpy()
        return {"ids": ids}, want, None

    stage("decoder", graphs.DecoderGraph(vq), (dec_case(2, 5)[0]["ids"],),
          lambda: [dec_case(2, 5), dec_case(1, 11)])

    if estimator is not None:
        def est_case(b: int) -> tuple:
            c = cond(b)
            with torch.no_grad():
                return {"cond": c}, estimator(torch.from_numpy(c)).numpy(), None

        stage("length_estimator", graphs.LengthGraph(estimator), (cond(2),),
              lambda: [est_case(2), est_case(5)])
    return errors, quantized


def export_bundle(models: str | os.PathLike | ModelSet, out_dir: str | os.PathLike, *,
                  text_encoder: str | Any | None = None, trans: str | os.PathLike | None = None,
                  opset: int = DEFAULT_OPSET, overwrite: bool = False, seed: int = 0,
                  quantize: str | None = None,
                  sign: str | os.PathLike | None = None) -> Path:
    """Export a model set as a bundle directory.

    Args:
        models: a model-set directory (see ``hmu_core.models.model_set``) or a ``ModelSet``.
        out_dir: the bundle directory to create (refused if it exists and is not empty,
            unless ``overwrite``).
        text_encoder: a spec (``minilm``, ``clip:/path/ViT-B-32.pt``; default: the model
            set's) or a loaded ``MiniLMEncoder``/``CLIPTextEncoder``.
        trans: a base-transformer directory overriding the set's.
        opset: ONNX opset of every graph.
        seed: seed of the random inputs that check each graph against torch.
        quantize: None (float32), ``int8``: dynamic int8 MatMuls in the base and residual
            step graphs, or ``text-int8``: the text encoder's weights stored as int8
            (``exporter.quantize``; recorded in the manifest's ``quantization``).
        sign: an ed25519 private key file (``hmu keygen``): the bundle gets ``signature.json``
            over its digest, for runtimes locked to trusted keys.
    Returns:
        ``out_dir``.
    Raises:
        ConfigError: bad model set, text encoder, out_dir or signing key (checked before any
        work); CheckpointError: bad checkpoints;
        BundleError: a graph disagrees with torch (an exporter bug).
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or not 14 <= opset <= 20:
        raise ConfigError(f"opset must be an int in 14..20 (the legacy exporter's range), got "
                          f"{opset!r}")
    quantize = quantization.check_method(quantize)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConfigError(f"{out} exists and is not empty; choose a new directory or pass "
                          f"--overwrite")
    signing_key = None if sign is None else load_private_key(sign)
    spec_name = text_encoder if isinstance(text_encoder, str) else None
    if isinstance(models, ModelSet):
        model_set = models if trans is None else dataclasses.replace(models, trans=Path(trans))
    else:
        model_set = resolve_model_set(models, text_encoder=spec_name, trans=trans)
    encoder = text_encoder if text_encoder is not None and spec_name is None else \
        load_text_encoder(spec_name or model_set.text_encoder)
    pipe = load_model_set(model_set)
    estimator = pipe.length_estimator
    checked = gen.load_generator(pipe, text_encoder=encoder)  # validates widths
    tokenizer, text_module, tok_sources, max_length, vocab_size = _text_encoder_parts(encoder)
    trans_model, kind = pipe.trans, checked.kind
    nb_code, q = pipe.vq.config.nb_code, pipe.vq.config.num_quantizers
    specs = graph_specs(kind=kind, tokenizer=tokenizer, text_dim=trans_model.clip_dim,
                        num_tokens=nb_code, num_quantizers=q, feature_dim=pipe.mean.shape[0],
                        length_classes=None if estimator is None else
                        estimator.config.output_size, with_res=pipe.res is not None)
    tokens = {"num_tokens": nb_code, "num_quantizers": q, "code_dim": pipe.vq.config.code_dim,
              "pad_id": trans_model.pad_id, "mask_id": trans_model.mask_id,
              "end_id": getattr(trans_model, "end_id", None),
              "res_pad_id": None if pipe.res is None else pipe.res.pad_id,
              "bamm_slots": MAX_TOKEN_LEN if kind == "bamm" else None}
    with atomic_directory(out, overwrite=overwrite or out.exists()) as tmp:
        files = _write_tokenizer(tmp, tokenizer, tok_sources)
        manifest = {
            "model_kind": kind, "fps": FPS, "unit_length": pipe.vq.config.unit_length,
            "min_tokens": MIN_TOKENS, "max_tokens": MAX_TOKENS,
            "feature_dim": int(pipe.mean.shape[0]), "tokens": tokens,
            "configs": {**pipe.opts, "length_estimator": None if estimator is None else
                        {"input_size": estimator.config.input_size,
                         "output_size": estimator.config.output_size}},
            "text_encoder": {"name": getattr(encoder, "name", type(encoder).__name__),
                             "spec": spec_name or model_set.text_encoder,
                             "dim": trans_model.clip_dim, "tokenizer": tokenizer,
                             "files": files, "max_length": max_length,
                             "vocab_size": vocab_size},
            "sampling_defaults": SamplingParams().to_dict(),
            "normalization": {"mean": "mean.npy", "std": "std.npy"},
            "graphs": {k: v.to_json() for k, v in specs.items()},
            "unlearning": model_set.unlearning_record(),
        }
        # float64, as released: de-normalising in float64 then casting is what torch's side does
        save_npy(tmp / "mean.npy", np.asarray(pipe.mean, np.float64))
        save_npy(tmp / "std.npy", np.asarray(pipe.std, np.float64))
        errors, quantized = _export_stages(tmp, specs, pipe, estimator, encoder, text_module,
                                           manifest["text_encoder"], opset, seed, quantize)
        manifest["export_check"] = {"max_abs_error": errors, "opset": opset}
        manifest["quantization"] = quantization.manifest_entry(quantize, quantized)
        write_manifest(tmp, manifest)
        bundle = read_bundle_unsigned(tmp)
        for stage, spec in bundle.graphs.items():
            session = _cpu_session(tmp / spec.file)
            check_session_io(tmp, stage, spec, session)
        if signing_key is not None:
            key_id = sign_bundle(tmp, signing_key)
            log.info("signed the bundle with key %s (digest %s)", key_id, bundle.digest)
    log.info("exported %s bundle to %s (max torch/ORT error %s)", kind, out, errors)
    return out
