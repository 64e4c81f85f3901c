"""Building blocks and sampling helpers shared by the MoMask and BAMM token transformers.

Everything here restates ``models/mask_transformer/{transformer,tools}.py`` of the official
MoMask code (EricGuo5513/momask-codes @94a6636) from ``reference/momask.md`` §2 and §7, so that
the modules built on it have the official state-dict keys and reproduce the official numbers:

- ``InputProcess``/``OutputProcess``/``PositionalEncoding`` keep the official attribute names
  (``poseEmbedding``, ``dense``, ``LayerNorm``, ``poseFinal``, ``pe``), which are the keys;
- the encoder is ``nn.TransformerEncoder``: post-LN, GELU, ``batch_first=False``, no final norm
  (momask.md §7 item 7);
- sampling helpers (``top_k``, ``gumbel_sample``, ``categorical_sample``) draw from an optional
  ``torch.Generator``; with ``None`` they consume torch's global RNG in the official order.

Text conditioning: the official modules load CLIP themselves; ours never do. A text encoder
(anything with ``encode(list[str]) -> (N, D) float32 tensor``) is attached with
``attach_text_encoder`` and is not part of the state dict, or condition vectors are passed in
place of the texts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.errors import ConfigError, MotionError

# opt.txt spells two constructor keys differently; config_from_opt(aliases=OPT_ALIASES) maps the
# file's names onto the config fields, and opt_key_names writes them back the official way.
OPT_ALIASES: dict[str, str] = {"n_layers": "num_layers", "n_heads": "num_heads"}
OPT_KEY_NAMES: dict[str, str] = {v: k for k, v in OPT_ALIASES.items()}


@runtime_checkable
class TextEncoder(Protocol):
    """What a transformer needs from a text encoder (CLIP ViT-B/32 for official checkpoints)."""

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Return ``(len(texts), D)`` float32 condition vectors."""
        ...


def validate_transformer_config(cfg: Any) -> None:
    """Check the fields every token transformer config shares; raise ``ConfigError`` if bad."""
    name = type(cfg).__name__
    for field in ("code_dim", "latent_dim", "ff_size", "num_layers", "num_heads", "clip_dim",
                  "num_tokens"):
        value = getattr(cfg, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name}.{field} must be a positive int, got {value!r}")
    if cfg.latent_dim % cfg.num_heads:
        raise ConfigError(
            f"{name}: latent_dim {cfg.latent_dim} is not divisible by num_heads {cfg.num_heads}; "
            f"choose a head count that divides it (released: 384 / 6)"
        )
    for field in ("dropout", "cond_drop_prob"):
        value = getattr(cfg, field)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}.{field} must be in [0, 1), got {value!r}")
    if cfg.cond_mode != "text":
        raise ConfigError(
            f"{name}.cond_mode is {cfg.cond_mode!r}; hmu supports only 'text' (the mode of every "
            f"released MoMask/BAMM checkpoint)"
        )


class InputProcess(nn.Module):
    """``(B, n, code_dim)`` token features -> ``(n, B, latent_dim)`` (official ``InputProcess``)."""

    def __init__(self, input_feats: int, latent_dim: int) -> None:
        super().__init__()
        self.poseEmbedding = nn.Linear(input_feats, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.poseEmbedding(x.permute(1, 0, 2))  # (B, n, c) -> (n, B, d)


class PositionalEncoding(nn.Module):
    """Sinusoidal PE kept as the persistent buffer ``pe`` (5000, 1, d): checkpoints hold it."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(1))  # (max_len, 1, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (n, B, d) -> ``x + pe[:n]`` then dropout."""
        return self.dropout(x + self.pe[: x.shape[0]])


class OutputProcess(nn.Module):
    """dense -> GELU -> LayerNorm(eps 1e-12) -> poseFinal; ``(n, B, d)`` -> ``(B, out, n)``.

    The official ``OutputProcess_Bert`` (mask transformer, logits) and ``OutputProcess``
    (residual transformer, code_dim features) are this same layer stack (momask.md §7 item 7).
    """

    def __init__(self, out_feats: int, latent_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(latent_dim, latent_dim)
        self.LayerNorm = nn.LayerNorm(latent_dim, eps=1e-12)
        self.poseFinal = nn.Linear(latent_dim, out_feats)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        h = self.LayerNorm(F.gelu(self.dense(hidden_states)))
        return self.poseFinal(h).permute(1, 2, 0)  # (n, B, out) -> (B, out, n)


def build_encoder(latent_dim: int, num_heads: int, ff_size: int, dropout: float,
                  num_layers: int) -> nn.TransformerEncoder:
    """The official ``seqTransEncoder``: post-LN, GELU, sequence-first, no final norm."""
    layer = nn.TransformerEncoderLayer(d_model=latent_dim, nhead=num_heads,
                                       dim_feedforward=ff_size, dropout=dropout,
                                       activation="gelu")
    # enable_nested_tensor only matters for batch_first; off, it just avoids a warning.
    return nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)


def init_weights(module: nn.Module) -> None:
    """Official init: Linear/Embedding N(0, 0.02) with zero bias, LayerNorm (1, 0).

    Applied with ``model.apply``; attention ``in_proj_weight`` is no Linear and keeps PyTorch's
    xavier init, as upstream (momask.md §2.3).
    """
    if isinstance(module, nn.Linear | nn.Embedding):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


# ---------------------------------------------------------------------------------------------
# masks, schedules, sampling


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """``(B,)`` lengths -> ``(B, max_len)`` bool, True at valid (non-padded) positions."""
    return torch.arange(max_len, device=lengths.device).expand(len(lengths), max_len) < \
        lengths.unsqueeze(1)


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """Mask ratio ``cos(pi t / 2)`` for ``t`` in [0, 1] (MoMask's gamma)."""
    return torch.cos(t * math.pi * 0.5)


def uniform(shape: Sequence[int], device: torch.device | str | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """U(0, 1) float32 draws, made the official way (``zeros(...).uniform_``) so seeds match."""
    return torch.zeros(tuple(shape), device=device).float().uniform_(0, 1, generator=generator)


def q_schedule(bs: int, low: int, high: int, device: torch.device | str | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Residual layer to train per sample, in ``[low, high - 1]``, biased to low layers.

    ``round((1 - cos(pi u / 2)) * (high - low - 1)) + low`` (momask.md §7 item 13).
    """
    schedule = 1 - cosine_schedule(uniform((bs,), device=device, generator=generator))
    return torch.round(schedule * (high - low - 1)).long() + low


def get_mask_subset_prob(mask: torch.Tensor, prob: float,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep each True of a bool ``mask`` with probability ``prob`` (official RNG call)."""
    return torch.bernoulli(mask, p=prob, generator=generator) & mask


def top_k(logits: torch.Tensor, thres: float = 0.9, dim: int = 1) -> torch.Tensor:
    """Keep the ``ceil((1 - thres) * V)`` largest logits along ``dim``, set the rest to -inf.

    This is the official "keep the top (1 - thres) share" filter, not nucleus sampling
    (momask.md §7 item 10): thres 0.9 keeps 52 of 512 classes, thres 0.99 keeps 1 of 64.
    """
    if not 0.0 <= thres < 1.0:
        raise ConfigError(f"topk_filter_thres must be in [0, 1), got {thres!r}")
    k = math.ceil((1 - thres) * logits.shape[dim])
    val, ind = logits.topk(k, dim=dim)
    out = torch.full_like(logits, float("-inf"))
    return out.scatter_(dim, ind, val)


def gumbel_noise(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard Gumbel noise shaped like ``t``: ``-log(-log(U))`` with logs clamped at 1e-20."""
    noise = torch.zeros_like(t).uniform_(0, 1, generator=generator)
    return -torch.log((-torch.log(noise.clamp(min=1e-20))).clamp(min=1e-20))


def gumbel_sample(t: torch.Tensor, temperature: float = 1.0, dim: int = 1,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """``argmax(t / max(temperature, 1e-10) + Gumbel)`` along ``dim`` (official sampler)."""
    return ((t / max(temperature, 1e-10)) + gumbel_noise(t, generator)).argmax(dim=dim)


def categorical_sample(probs: torch.Tensor, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    """One draw per row of ``probs`` (..., V), using the RNG as ``Categorical(probs).sample()``.

    ``Categorical`` normalises the rows and calls ``multinomial(probs_2d, 1, True)``; we do the
    same so a seed gives the official tokens, and accept a generator.
    """
    shape = probs.shape[:-1]
    probs = probs / probs.sum(-1, keepdim=True)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, True, generator=generator).reshape(shape)


def cal_performance(pred: torch.Tensor, labels: torch.Tensor, ignore_index: int
                    ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Official ``cal_performance``: CE over non-ignored positions, top-1 ids, top-1 accuracy.

    Args:
        pred: ``(B, C, n)`` logits.
        labels: ``(B, n)`` int64 targets, ``ignore_index`` where no loss is taken.
    Returns:
        ``(loss, pred_id (B, n), acc)``; ``acc`` is a Python float (NaN with no target).
    """
    loss = F.cross_entropy(pred, labels, ignore_index=ignore_index)
    pred_id = torch.topk(pred, k=1, dim=1).indices[:, 0]
    mask = labels.ne(ignore_index)
    acc = torch.mean(pred_id.eq(labels).masked_select(mask).float()).item()
    return loss, pred_id, acc


_F = TypeVar("_F", bound=Callable[..., Any])


def eval_no_grad(fn: _F) -> _F:
    """Run a sampling method in eval mode without grad, then restore the training flag."""

    @functools.wraps(fn)
    def inner(model: nn.Module, *args: Any, **kwargs: Any) -> Any:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return fn(model, *args, **kwargs)
        finally:
            model.train(was_training)

    return inner  # type: ignore[return-value]


def check_lengths(m_lens: Any, name: str = "m_lens") -> torch.Tensor:
    """``m_lens`` as a 1-D int64 tensor of positive token lengths, else ``MotionError``."""
    lens = torch.as_tensor(m_lens)
    bad_dtype = lens.dtype.is_floating_point or lens.dtype == torch.bool
    if lens.ndim != 1 or lens.numel() == 0 or bad_dtype:
        raise MotionError(
            f"{name} must be a non-empty 1-D integer tensor of token lengths (frames // 4), "
            f"got shape {tuple(lens.shape)} dtype {lens.dtype}"
        )
    if int(lens.min()) < 1:
        raise MotionError(f"{name} must be >= 1 token everywhere, got {lens.tolist()}")
    return lens.long()


class TextConditioned(nn.Module):
    """Base of the token transformers: the official text hooks without a built-in CLIP.

    ``encode_text`` (the official name) uses an attached encoder for a list of strings, or
    passes a ``(B, clip_dim)`` tensor of precomputed condition vectors through. The encoder is
    stored outside ``_modules`` so it never shows up in ``state_dict()`` or ``parameters()``.
    """

    clip_dim: int
    cond_drop_prob: float

    def _adopt_config(self, config: Any, config_type: type) -> None:
        """Keep ``config`` and copy the attributes the official code reads off the module.

        Raises:
            ConfigError: ``config`` is not a ``config_type``.
        """
        if not isinstance(config, config_type):
            raise ConfigError(
                f"{type(self).__name__} needs a {config_type.__name__}, got {type(config)}"
            )
        self.config = config
        for name in ("code_dim", "latent_dim", "clip_dim", "dropout", "cond_mode",
                     "cond_drop_prob", "num_tokens"):
            setattr(self, name, getattr(config, name))

    def attach_text_encoder(self, encoder: TextEncoder | None) -> None:
        """Use ``encoder.encode(list[str])`` for raw texts from now on (``None`` detaches)."""
        if encoder is not None and not callable(getattr(encoder, "encode", None)):
            raise ConfigError(
                f"text encoder {type(encoder).__name__} has no encode(list[str]) method; wrap it "
                f"in an object whose encode returns (N, {self.clip_dim}) float32 vectors"
            )
        object.__setattr__(self, "_text_encoder", encoder)

    @property
    def text_encoder(self) -> TextEncoder | None:
        """The attached text encoder, or ``None``."""
        return self.__dict__.get("_text_encoder")

    def encode_text(self, raw_text: Sequence[str] | torch.Tensor) -> torch.Tensor:
        """Texts (or precomputed vectors) -> ``(B, clip_dim)`` float32 on the model's device.

        Raises:
            ConfigError: texts given but no encoder attached, or vectors of the wrong shape.
        """
        device = self.cond_emb.weight.device
        if isinstance(raw_text, torch.Tensor):
            feat = raw_text
        else:
            if isinstance(raw_text, str):
                raise ConfigError("pass a list of texts, not one string (wrap it: [text])")
            encoder = self.text_encoder
            if encoder is None:
                raise ConfigError(
                    f"{type(self).__name__} got texts but has no text encoder; call "
                    f"attach_text_encoder(encoder) (CLIP ViT-B/32 for official checkpoints) or "
                    f"pass (B, {self.clip_dim}) condition vectors instead of texts"
                )
            feat = encoder.encode(list(raw_text))
        if feat.ndim != 2 or feat.shape[1] != self.clip_dim:
            raise ConfigError(
                f"condition vectors must have shape (B, {self.clip_dim}), got {tuple(feat.shape)}"
            )
        return feat.to(device=device, dtype=torch.float32)

    def mask_cond(self, cond: torch.Tensor, force_mask: bool = False) -> torch.Tensor:
        """Zero the condition: always with ``force_mask`` (the CFG null input), per sample with
        probability ``cond_drop_prob`` in training (global RNG, like dropout), never in eval."""
        bs = cond.shape[0]
        if force_mask:
            return torch.zeros_like(cond)
        if self.training and self.cond_drop_prob > 0.0:
            mask = torch.bernoulli(torch.ones(bs, device=cond.device) * self.cond_drop_prob)
            return cond * (1.0 - mask.view(bs, 1))
        return cond

    def parameters_wo_clip(self) -> list[nn.Parameter]:
        """Official trainers' optimiser list; we hold no CLIP, so it is every parameter."""
        return list(self.parameters())
