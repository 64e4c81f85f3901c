"""CLIP ViT-B/32 text tower in torch, loaded from a user's weights file (what MoMask conditions on).

The module restates the text half of OpenAI's ``clip/model.py`` (reference/runtime.md §2,
momask.md §2.2) with the official state-dict names, so the ``token_embedding``,
``positional_embedding``, ``transformer.resblocks.*``, ``ln_final`` and ``text_projection``
entries of a full CLIP state dict load strictly: ``nn.MultiheadAttention`` (sequence-first),
pre-LN blocks, QuickGELU, a causal mask, final LayerNorm, then the feature at the end token
(``argmax`` of the ids, eot = 49407 being the largest id) times ``text_projection``. The output
is MoMask's ``encode_text``: 512-d, not L2-normalised.

Precision: OpenAI's released ``ViT-B-32.pt`` stores fp16 weights. ``clip.load(device="cpu")``
computes in fp32 on those values; the official MoMask training ran CLIP in fp16 on GPU.
``CLIPTextEncoder`` computes in fp32 by default (bit-equal to ``clip.load(...,
device="cpu").encode_text``, checked against openai-clip's ``CLIP`` in the tests);
``precision="fp16"`` casts exactly the tensors ``clip.model.convert_weights`` casts and runs
the official mixed path (fp32 LayerNorm), which on a GPU is what MoMask's training saw
(features differ from fp32 by ~4e-3 on a random ViT-B/32 tower).

Speed: attention is causal, so positions after the last end token cannot change any end-token
feature. ``trim=True`` (fp32 default) runs only ``max(eot) + 1`` positions (~16 for motion
captions instead of 77): same features up to float rounding (<= 4e-6), 3-4x faster on CPU.
In fp16 the shorter matmuls round differently (~5e-3), so fp16 runs all 77 by default.

Weights files: see ``read_clip_weights`` (state dicts via ``torch.load(weights_only=True)``,
OpenAI's TorchScript archives via ``torchscript_weights``).
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from hmu_core.errors import ConfigError
from hmu_core.text.clip_tokenizer import CONTEXT_LENGTH, CLIPTokenizer
from hmu_core.text.torchscript_weights import is_torchscript_archive, read_torchscript_tensors

log = logging.getLogger(__name__)

CLIP_WEIGHTS_ENV = "HMU_CLIP_WEIGHTS"
"""Environment variable naming the CLIP weights file, used when no path is given."""
DEFAULT_CLIP_FILE = Path("~/.cache/clip/ViT-B-32.pt")
"""Where ``clip.load("ViT-B/32")`` downloads the file, so MoMask users already have it there."""
TEXT_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.resblocks.",
                 "ln_final.", "text_projection")
_WRAPPER_PREFIXES = ("module.", "clip_model.", "model.")


@dataclass(frozen=True)
class CLIPTextConfig:
    """Text-tower sizes; defaults are ViT-B/32's (63.4 M parameters)."""

    embed_dim: int = 512
    context_length: int = CONTEXT_LENGTH
    vocab_size: int = 49408
    width: int = 512
    heads: int = 8
    layers: int = 12


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back, as OpenAI's subclass (matters in fp16 only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: CLIP's activation, not ``nn.GELU``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``; sequence-first."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """``x`` (L, B, width), ``attn_mask`` (L, L) additive, -inf above the diagonal."""
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Holds ``resblocks`` so the keys read ``transformer.resblocks.{i}.*``, as in CLIP."""

    def __init__(self, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class CLIPTextTower(nn.Module):
    """CLIP's ``encode_text`` as a module: ``(B, L)`` int64 ids -> ``(B, embed_dim)`` features."""

    def __init__(self, config: CLIPTextConfig = CLIPTextConfig()) -> None:
        super().__init__()
        if config.width % config.heads:
            raise ConfigError(f"CLIP text width {config.width} is not divisible by "
                              f"{config.heads} heads")
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.transformer = Transformer(config.width, config.layers, config.heads)
        self.ln_final = LayerNorm(config.width)
        self.text_projection = nn.Parameter(torch.empty(config.width, config.embed_dim))
        # Not in the state dict (OpenAI keeps it as a plain attribute); a buffer follows .to().
        mask = torch.full((config.context_length, config.context_length), float("-inf"))
        self.register_buffer("attn_mask", mask.triu_(1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """OpenAI's ``initialize_parameters`` for the text half (random towers in tests)."""
        cfg = self.config
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        proj_std = cfg.width ** -0.5 * (2 * cfg.layers) ** -0.5
        attn_std = cfg.width ** -0.5
        fc_std = (2 * cfg.width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=cfg.width ** -0.5)

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype: fp16 after ``half_like_official``, else fp32 (OpenAI's ``self.dtype``)."""
        return self.text_projection.dtype

    def half_like_official(self) -> CLIPTextTower:
        """Cast what ``clip.model.convert_weights`` casts to fp16 (Linear, attention weights,
        ``text_projection``); embeddings and LayerNorms stay fp32, as in MoMask on GPU."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.MultiheadAttention):
                for name in ("weight", "bias", "in_proj_weight", "in_proj_bias"):
                    tensor = getattr(module, name, None)
                    if tensor is not None:
                        tensor.data = tensor.data.half()
        self.text_projection.data = self.text_projection.data.half()
        return self

    def forward(self, ids: torch.Tensor, trim: bool = True) -> torch.Tensor:
        """Projected end-token features.

        Args:
            ids: ``(B, L)`` integer token ids from ``CLIPTokenizer`` (L <= context_length).
            trim: run only the first ``max(eot) + 1`` positions (same features, faster).
        Returns:
            ``(B, embed_dim)`` in the compute dtype (fp32 unless ``half_like_official``).
        """
        if ids.ndim != 2 or ids.shape[1] > self.config.context_length:
            raise ConfigError(f"CLIP ids must be (B, L<={self.config.context_length}), "
                              f"got {tuple(ids.shape)}")
        ids = ids.long()
        eot = ids.argmax(dim=-1)  # (B,) the end token has the largest id
        if trim:
            ids = ids[:, : int(eot.max()) + 1]
        n = ids.shape[1]
        x = self.token_embedding(ids).to(self.dtype)  # (B, n, width)
        x = x + self.positional_embedding[:n].to(self.dtype)
        x = self.transformer(x.permute(1, 0, 2), self.attn_mask[:n, :n].to(self.dtype))
        x = self.ln_final(x.permute(1, 0, 2)).to(self.dtype)  # (n, B, w) -> (B, n, w)
        return x[torch.arange(x.shape[0], device=x.device), eot] @ self.text_projection


def config_from_state_dict(state: dict[str, torch.Tensor]) -> CLIPTextConfig:
    """Tower sizes from the tensors, as ``clip.model.build_model`` infers them.

    Heads are ``width // 64``, OpenAI's rule (8 for ViT-B/32).
    """
    try:
        width = state["ln_final.weight"].shape[0]
        layers = len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")})
        return CLIPTextConfig(embed_dim=state["text_projection"].shape[1],
                              context_length=state["positional_embedding"].shape[0],
                              vocab_size=state["token_embedding.weight"].shape[0],
                              width=width, heads=max(width // 64, 1), layers=layers)
    except KeyError as exc:
        raise ConfigError(f"not a CLIP state dict: key {exc.args[0]!r} is missing") from exc


def text_state_dict(state: dict[str, object]) -> dict[str, torch.Tensor]:
    """The text-tower entries of a full CLIP (or MoMask ``clip_model.*``) state dict, as fp32."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix) and key[len(prefix):].startswith(TEXT_PREFIXES):
                key = key[len(prefix):]
                break
        if key.startswith(TEXT_PREFIXES) and isinstance(value, torch.Tensor):
            # fp16 weights widen exactly; computing in fp32 is clip.load(device="cpu").
            out[key] = value.detach().float()
    return out


def _read_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a TorchScript archive: allow-list unpickler first, ``torch.jit.load`` second."""
    try:
        return read_torchscript_tensors(path)
    except (pickle.UnpicklingError, KeyError, ValueError, TypeError) as exc:
        log.warning("%s: reading the TorchScript archive's tensors directly failed (%s); "
                    "falling back to torch.jit.load", path, exc)
    with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit.* in general
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu").state_dict()


def read_clip_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The text-tower tensors of a CLIP weights file (``ViT-B-32.pt``), fp32, on CPU.

    A plain state dict (``torch.save(model.state_dict())``, optionally under ``state_dict``)
    loads with ``torch.load(weights_only=True)``. OpenAI's released files are TorchScript
    archives, which ``torch.load(weights_only=True)`` refuses ("Cannot use weights_only=True
    with TorchScript archives"); their tensors are read by ``read_torchscript_tensors``, an
    allow-list unpickler that runs nothing. Only if that fails (an archive layout it does not
    know) does ``torch.jit.load(map_location="cpu")`` read it, with a warning: TorchScript's
    loader uses its own unpickler (no arbitrary Python classes) but builds the scripted
    modules; only their ``state_dict()`` is kept.

    Raises:
        ConfigError: the file is missing, unreadable, or holds no CLIP text tower.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(clip_missing_message([path]))
    try:
        if is_torchscript_archive(path):
            state: object = _read_torchscript(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError, EOFError, zipfile.BadZipFile,
            pickle.UnpicklingError) as exc:
        # weights_only refuses pickles that hold anything but tensors and plain containers
        raise ConfigError(f"cannot read CLIP weights {path} (as a state dict with "
                          f"weights_only=True, or as a TorchScript archive): {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds a {type(state).__name__}, not a CLIP state dict")
    text = text_state_dict(state)
    if not text:
        raise ConfigError(f"{path} has no CLIP text-tower weights (no token_embedding/"
                          f"transformer.resblocks keys); is it a CLIP ViT-B/32 file?")
    return text


def load_clip_text_tower(path: str | Path) -> CLIPTextTower:
    """A ``CLIPTextTower`` built from the sizes in the file and loaded strictly, in eval mode.

    Raises:
        ConfigError: missing file, missing or mis-shaped keys (named with both shapes).
    """
    state = read_clip_weights(path)
    tower = CLIPTextTower(config_from_state_dict(state))
    own = tower.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ConfigError(f"CLIP weights {path} lack {len(missing)} text-tower keys, "
                          f"e.g. {missing[:3]}")
    for key, tensor in own.items():
        if tensor.shape != state[key].shape:
            raise ConfigError(f"CLIP weights {path}: {key} has shape {tuple(state[key].shape)}, "
                              f"expected {tuple(tensor.shape)}")
    # Extra tensors under text prefixes (a TorchScript archive can keep a mask attribute)
    # are not weights; everything the tower has was checked above.
    tower.load_state_dict({k: state[k] for k in own}, strict=True)
    return tower.eval().requires_grad_(False)


def clip_search_paths(path: str | Path | None = None) -> list[Path]:
    """Where the weights are looked for: ``path`` (a directory means its ``ViT-B-32.pt``), else
    ``$HMU_CLIP_WEIGHTS``, then ``~/.cache/clip/ViT-B-32.pt`` (``clip.load``'s download place)."""
    if path is not None:
        p = Path(path).expanduser()
        return [p / DEFAULT_CLIP_FILE.name if p.is_dir() else p]
    out = [Path(os.environ[CLIP_WEIGHTS_ENV]).expanduser()] if os.environ.get(
        CLIP_WEIGHTS_ENV) else []
    return [*out, DEFAULT_CLIP_FILE.expanduser()]


def clip_missing_message(tried: list[Path]) -> str:
    """The error text for absent weights: what was looked for, where, and how to supply it."""
    return (
        f"CLIP ViT-B/32 weights not found (looked for {', '.join(str(p) for p in tried)}). "
        f"hmu does not download them: copy OpenAI's ViT-B-32.pt (the file clip.load('ViT-B/32') "
        f"saves in ~/.cache/clip/) there, set {CLIP_WEIGHTS_ENV}=/path/to/ViT-B-32.pt, or pass "
        f"--text-encoder clip:/path/to/ViT-B-32.pt"
    )


class CLIPTextEncoder:
    """The ``TextEncoder`` for official MoMask/BAMM checkpoints: texts -> ``(N, 512)`` float32.

    Args:
        tower: a loaded ``CLIPTextTower`` (``load_clip_text_tower``) or a random one in tests.
        tokenizer: defaults to ``CLIPTokenizer()`` (vendored vocabulary).
        device: where the tower runs.
        precision: ``"fp32"`` (default; equals OpenAI on CPU) or ``"fp16"`` (MoMask's GPU path).
        trim: run only up to the last end token. Default: on in fp32 (same features up to
            ~1e-6, faster), off in fp16, where the shorter matmuls round differently (~5e-3)
            and only the full 77 positions reproduce the official fp16 features bit for bit.
        batch_size: texts per forward pass, bounding memory.
    """

    def __init__(self, tower: CLIPTextTower, tokenizer: CLIPTokenizer | None = None,
                 device: str | torch.device = "cpu", precision: str = "fp32",
                 trim: bool | None = None, batch_size: int = 256,
                 name: str = "clip-vit-b32") -> None:
        if precision not in ("fp32", "fp16"):
            raise ConfigError(f"precision must be 'fp32' or 'fp16', got {precision!r}")
        self.tower = tower.to(device).eval().requires_grad_(False)
        if precision == "fp16":
            self.tower.half_like_official()
        self.tokenizer = tokenizer or CLIPTokenizer()
        self.device = torch.device(device)
        self.trim = precision == "fp32" if trim is None else trim
        self.batch_size = max(int(batch_size), 1)
        self.name = name
        self.dim = tower.config.embed_dim

    @classmethod
    def from_file(cls, path: str | Path | None = None, **kwargs: object) -> CLIPTextEncoder:
        """Load the tower from ``path`` or the first existing file of ``clip_search_paths``."""
        tried = clip_search_paths(path)
        found = next((p for p in tried if p.is_file()), None)
        if found is None:
            raise ConfigError(clip_missing_message(tried))
        return cls(load_clip_text_tower(found), **kwargs)  # type: ignore[arg-type]

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), embed_dim)`` float32 on CPU: MoMask's ``encode_text(...).float()``."""
        ids = self.tokenizer.tokenize(texts, context_length=self.tower.config.context_length)
        out = [self.tower(torch.from_numpy(ids[i:i + self.batch_size]).to(self.device),
                          trim=self.trim).float().cpu()
               for i in range(0, len(ids), self.batch_size)]
        if not out:
            return torch.zeros(0, self.dim)
        return torch.cat(out)
