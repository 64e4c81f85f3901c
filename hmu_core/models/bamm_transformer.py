"""BAMM's base-layer transformer (bidirectional autoregressive), checkpoint-compatible.

Restated from ``reference/baselines.md`` §1 (github:exitudio/BAMM, ``MaskTransformer`` with
``opt.trans == 'official'``). BAMM keeps MoMask's key names; what differs (§1.2, §1.6):

- tokens: ``end_id = num_tokens``, ``pad_id = num_tokens + 1``, ``mask_id = num_tokens + 2``;
  ``token_emb`` has ``num_tokens + 3`` rows and the head predicts ``num_tokens + 1`` classes
  (codes + END);
- the positional encoding is added to the whole sequence, text token included;
- attention is causal plus "conditional" columns (``bamm_attention_mask``, §1.3), with no
  key-padding mask;
- CFG runs one pass over the batch doubled as (cond ‖ zero-cond);
- ``generate`` is two cascaded autoregressive passes (§1.5) and returns ``(ids, pred_len)``;
  ``timesteps``, ``temperature``, ``topk_filter_thres``, ``gsample`` and ``force_mask`` are
  accepted for signature compatibility and ignored, as upstream.

The residual layers use MoMask's ``ResidualTransformer`` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.errors import ConfigError, MotionError
from hmu_core.models.transformer_common import (
    OPT_KEY_NAMES,
    InputProcess,
    OutputProcess,
    PositionalEncoding,
    TextConditioned,
    build_encoder,
    cal_performance,
    categorical_sample,
    check_lengths,
    eval_no_grad,
    init_weights,
    lengths_to_mask,
    validate_transformer_config,
)
from hmu_core.sampling.lengths import MAX_TOKENS

Cond = Sequence[str] | torch.Tensor

# Upstream hard-codes 49 token slots (196 frames / 4) plus one END slot.
MAX_TOKEN_LEN = MAX_TOKENS
# Pass 2 of upstream generate uses this CFG scale whatever the caller asked (§1.5).
REFINE_COND_SCALE = 3.0


@dataclass(frozen=True)
class BAMMTransformerConfig:
    """Official BAMM ``MaskTransformer(...)`` constructor keys (``opt.num_tokens``, ``opt.trans``
    with the prefix dropped). Defaults follow BAMM's options (baselines.md §1.4)."""

    code_dim: int = field(default=512, metadata={"opt": "derived"})
    cond_mode: str = field(default="text", metadata={"opt": "derived"})
    latent_dim: int = 384
    ff_size: int = 1024
    num_layers: int = 8
    num_heads: int = 6
    dropout: float = 0.2
    clip_dim: int = field(default=512, metadata={"opt": "derived"})
    cond_drop_prob: float = 0.1
    clip_version: str = field(default="ViT-B/32", metadata={"opt": "derived"})
    num_tokens: int = field(default=512, metadata={"opt": "derived"})
    trans: str = field(default="official", metadata={"opt": "optional"})
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)
    opt_key_names: Mapping[str, str] = field(default_factory=lambda: dict(OPT_KEY_NAMES),
                                             compare=False)

    def __post_init__(self) -> None:
        validate_transformer_config(self)
        if self.trans != "official":
            raise ConfigError(
                f"BAMMTransformerConfig.trans is {self.trans!r}; only 'official' "
                f"(nn.TransformerEncoder, the released model) is supported; 't2mgpt' uses "
                f"other key names"
            )


def bamm_attention_mask(cond_idx: torch.Tensor | None, pad_id: int, batch: int, length: int,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """BAMM's "may attend" matrix over ``[text, x_0, ..., x_{length-2}]`` (baselines.md §1.3).

    Start causal (lower-triangular); if ``cond_idx`` is given, a position is "cond" when it is
    the text or its ``cond_idx`` entry is not ``pad_id``: rows of cond queries are cleared, then
    every cond column is opened. Non-cond queries see their causal prefix plus every cond
    token; cond queries see only cond tokens.

    Args:
        cond_idx: ``(batch, length - 1)`` ids, ``pad_id`` where not a condition; or ``None``
            for a plain causal mask.
    Returns:
        ``(batch, length, length)`` bool, True where query (row) may attend key (column).
    """
    attn = torch.tril(torch.ones(length, length, dtype=torch.bool, device=device))
    attn = attn.unsqueeze(0).expand(batch, length, length)
    if cond_idx is None:
        return attn.clone()
    cond_pos = cond_idx != pad_id
    cond_pos = torch.cat([torch.ones_like(cond_pos[:, :1]), cond_pos], dim=1)  # (B, T)
    attn = attn & ~cond_pos.unsqueeze(2)  # clear rows of cond queries
    return attn | cond_pos.unsqueeze(1)  # open cond columns


class BAMMTransformer(TextConditioned):
    """BAMM's text-conditioned base-layer transformer (predicts codes and the END token)."""

    def __init__(self, config: BAMMTransformerConfig) -> None:
        super().__init__()
        self._adopt_config(config, BAMMTransformerConfig)
        self.num_heads = config.num_heads
        self.end_id = config.num_tokens
        self.pad_id = config.num_tokens + 1
        self.mask_id = config.num_tokens + 2

        # Official creation order (keys in official order, same init under a seed).
        self.input_process = InputProcess(config.code_dim, config.latent_dim)
        self.position_enc = PositionalEncoding(config.latent_dim, config.dropout)
        self.seqTransEncoder = build_encoder(config.latent_dim, config.num_heads, config.ff_size,
                                             config.dropout, config.num_layers)
        self.cond_emb = nn.Linear(config.clip_dim, config.latent_dim)
        self.output_process = OutputProcess(config.num_tokens + 1, config.latent_dim)
        self.token_emb = nn.Embedding(config.num_tokens + 3, config.code_dim)
        self.apply(init_weights)

    def _network(self, motion_ids: torch.Tensor, cond: torch.Tensor,
                 cond_idx: torch.Tensor | None) -> torch.Tensor:
        """Embed, add PE to the whole sequence, run the masked encoder; ``(B, V+1, n+1)``."""
        c = self.cond_emb(cond).unsqueeze(0)  # (1, B, latent)
        x = self.input_process(self.token_emb(motion_ids))  # (n, B, latent)
        # Unlike MoMask, the text token gets the PE too (baselines.md §1.2).
        xseq = self.position_enc(torch.cat([c, x], dim=0))  # (n+1, B, latent)
        length, batch = xseq.shape[:2]
        attn = bamm_attention_mask(cond_idx, self.pad_id, batch, length, xseq.device)
        # Per-head copies, batch-major, as nn.MultiheadAttention expects a 3-D mask.
        attn = torch.repeat_interleave(attn, self.num_heads, dim=0)
        output = self.seqTransEncoder(xseq, mask=~attn)
        return self.output_process(output)

    def trans_forward(self, motion_ids: torch.Tensor, cond: torch.Tensor,
                      padding_mask: torch.Tensor | None = None, force_mask: bool | None = None,
                      cond_idx: torch.Tensor | None = None) -> torch.Tensor:
        """One pass; output position k predicts token k (the text acts as BOS).

        Args:
            motion_ids: ``(B, n)`` ids (codes, ``end_id``, ``pad_id``).
            cond: ``(B, clip_dim)`` condition vectors.
            padding_mask: unused (upstream passes ``None``; attention has no padding mask).
            force_mask: ``True``: null condition; ``False``: the condition (dropped per sample
                with ``cond_drop_prob`` in training); ``None`` in eval: the batch doubled as
                (cond ‖ null), as upstream CFG does. In training ``None`` acts as ``False``.
            cond_idx: ``(B, n)`` ids, ``pad_id`` where a position is not a condition.
        Returns:
            ``(B, num_tokens + 1, n + 1)`` logits, or ``(2B, ...)`` for the doubled batch.
        """
        del padding_mask  # kept for the official signature
        if force_mask is None and not self.training:
            cond = torch.cat([cond, torch.zeros_like(cond)], dim=0)
            motion_ids = torch.cat([motion_ids, motion_ids], dim=0)
            if cond_idx is not None:
                cond_idx = torch.cat([cond_idx, cond_idx], dim=0)
        else:
            # Upstream ignores force_mask=True in training; we honour it (no official script
            # trains with it in text mode, so nothing observable changes).
            cond = self.mask_cond(cond, force_mask=bool(force_mask))
        return self._network(motion_ids, cond, cond_idx)

    def forward(self, ids: torch.Tensor, y: Cond, m_lens: torch.Tensor, *,
                generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Training loss (baselines.md §1.4): teacher forcing with END at ``m_len``.

        Per batch: with probability 0.5 a ratio r ~ U(0, 0.5) is drawn and each position up to
        END becomes a condition with probability r; inputs before END are replaced by random
        codes with probability p ~ U(0, 0.5). The CE covers every position up to END, each
        sample weighted to contribute its mean. Upstream draws r and p from Python's and
        numpy's RNGs; here every draw comes from ``generator`` (or torch's global RNG).

        Args:
            ids: ``(B, n)`` RVQ layer-0 codes; ``m_lens``: ``(B,)`` token lengths ``<= n``.
        Returns:
            ``(ce_loss, pred_id (B, n+1), acc)``.
        """
        if ids.ndim != 2:
            raise MotionError(f"ids must be (B, n) token ids, got shape {tuple(ids.shape)}")
        bs, ntokens = ids.shape
        device = ids.device
        m_lens = check_lengths(m_lens).to(device)
        if int(m_lens.max()) > ntokens:
            raise MotionError(f"m_lens {m_lens.tolist()} exceed the {ntokens} token columns")
        non_pad_mask = lengths_to_mask(m_lens, ntokens + 1)
        ids = torch.cat([ids, torch.full((bs, 1), self.end_id, device=device)], dim=-1).long()
        ids = torch.where(non_pad_mask, ids, self.pad_id)
        ids = ids.scatter(-1, m_lens[:, None], self.end_id)  # (B, n+1)
        with_end_mask = lengths_to_mask(m_lens + 1, ntokens + 1)

        occur_r, cond_r = torch.rand(2, generator=generator, device=device).tolist()
        r = cond_r * 0.5 if occur_r < 0.5 else 0.0
        cond_pos = torch.rand(ids.shape, generator=generator, device=device) < r
        cond_idx = torch.where(cond_pos & with_end_mask, ids, self.pad_id)

        with torch.no_grad():
            cond_vector = self.encode_text(y)
        p = float(torch.rand(1, generator=generator, device=device)) * 0.5
        mask_rid = torch.bernoulli(torch.full(ids.shape, p, device=device),
                                   generator=generator) > 0
        rand_id = torch.randint_like(ids, high=self.num_tokens, generator=generator)
        before_end_mask = lengths_to_mask(m_lens, ntokens + 1)
        x_ids = torch.where(mask_rid & before_end_mask, rand_id, ids)

        logits = self.trans_forward(x_ids, cond_vector, None, False, cond_idx=cond_idx)[..., :-1]
        weights = with_end_mask / (with_end_mask.sum(-1, keepdim=True) * bs)
        ce = F.cross_entropy(logits.permute(0, 2, 1)[with_end_mask], ids[with_end_mask],
                             reduction="none")
        ce_loss = (ce * weights[with_end_mask]).sum()
        _, pred_id, acc = cal_performance(logits, ids, ignore_index=self.pad_id)
        return ce_loss, pred_id, acc

    def forward_with_cond_scale(self, motion_ids: torch.Tensor, cond_vector: torch.Tensor,
                                padding_mask: torch.Tensor | None, cond_scale: float = 3,
                                force_mask: bool | None = None,
                                cond_idx: torch.Tensor | None = None) -> torch.Tensor:
        """CFG ``u + s (c - u)`` from one doubled-batch pass; ``(B, num_tokens + 1, n + 1)``."""
        del padding_mask
        if force_mask:
            return self.trans_forward(motion_ids, cond_vector, None, force_mask=True,
                                      cond_idx=cond_idx)
        bs = motion_ids.shape[0]
        ids2 = torch.cat([motion_ids, motion_ids], dim=0)
        idx2 = None if cond_idx is None else torch.cat([cond_idx, cond_idx], dim=0)
        cond2 = torch.cat([cond_vector, torch.zeros_like(cond_vector)], dim=0)
        both = self._network(ids2, cond2, idx2)
        logits, aux_logits = both[:bs], both[bs:]
        return aux_logits + (logits - aux_logits) * cond_scale

    def gen_one(self, idx: torch.Tensor, cond_vector: torch.Tensor, seq_len: int,
                cond_idx: torch.Tensor | None, cond_scale: float, pred_len: bool = True, *,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One left-to-right pass: for k < seq_len sample token k from output k (plain
        categorical, no top-k, no temperature). END is a class only when ``pred_len``.

        Returns ``(ids (B, seq_len + 1), probs of the drawn tokens (B, seq_len))``.
        """
        idx = idx.clone()
        probs_all = []
        for k in range(seq_len):
            logits = self.forward_with_cond_scale(idx, cond_vector, None, cond_scale=cond_scale,
                                                  cond_idx=cond_idx)[..., k]  # (B, V+1)
            if not pred_len:
                logits = logits[..., :-1]  # END excluded
            probs = F.softmax(logits, dim=1)
            current = categorical_sample(probs, generator)
            probs_all.append(probs.gather(1, current[:, None]))
            idx[:, k] = current
        return idx, torch.cat(probs_all, dim=1)

    def _first_end(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Upstream length rule: END sampled at 0 moves to 1 (code 0 at 0); the first id
        ``>= end_id`` (END or pad) gives the length, ``n + 1`` if there is none."""
        xs = xs.clone()
        at_first = xs[:, 0] >= self.end_id
        xs[at_first, 0] = 0
        xs[at_first, 1] = self.end_id
        is_end = xs >= self.end_id
        found, first = torch.max(is_end, dim=1)
        pred_len = torch.where(found, first, torch.full_like(first, xs.shape[1] + 1))
        return xs, pred_len

    def pad_after_end(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n)`` ids -> (ids with ``pad_id`` after the END slot, ``pred_len (B,)``)."""
        xs, pred_len = self._first_end(xs)
        keep = lengths_to_mask(pred_len + 1, xs.shape[1])
        return torch.where(keep, xs, self.pad_id), pred_len

    def pad_when_end(self, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, n)`` ids -> (ids with ``-1`` from END on, ``pred_len (B,)``): decoder input."""
        xs, pred_len = self._first_end(xs)
        keep = lengths_to_mask(pred_len, xs.shape[1])
        return torch.where(keep, xs, -1), pred_len

    @eval_no_grad
    def generate(self, conds: Cond, m_lens: torch.Tensor | None, timesteps: int = 10,
                 cond_scale: float = 4, temperature: float = 1, topk_filter_thres: float = 0.9,
                 gsample: bool = False, force_mask: bool = False, is_predict_len: bool = True,
                 *, generator: torch.Generator | None = None,
                 max_token_len: int = MAX_TOKEN_LEN) -> tuple[torch.Tensor, torch.Tensor]:
        """Two cascaded passes (baselines.md §1.5).

        Pass 1 (causal, CFG ``cond_scale``) samples every slot left to right, END allowed only
        with ``is_predict_len``; the length is the first END (else ``m_lens`` is used). Pass 2
        picks ``round(pred_len / 2)`` slots to re-generate by sorting all-equal scores (upstream
        leaves this to the sort's tie-break; we sort stably, so it is the first half), keeps
        the other real tokens plus END as conditions, re-samples every slot with CFG 3 and END
        excluded, then restores the condition slots.

        Args:
            conds: ``B`` texts or ``(B, clip_dim)`` condition vectors.
            m_lens: ``(B,)`` token lengths in ``[1, max_token_len]``; ignored (may be ``None``)
                with ``is_predict_len``.
            timesteps, temperature, topk_filter_thres, gsample, force_mask: ignored, as
                upstream.
            cond_scale: CFG scale of pass 1.
            is_predict_len: predict the length with the END token.
            generator: RNG for the sampling; ``None`` uses torch's global RNG.
            max_token_len: token slots (upstream: 49).
        Returns:
            ``ids (B, max_token_len + 1)``: codes, END at ``pred_len``; slots after it hold
            leftovers, as upstream (use ``pred_len`` or ``pad_when_end``); and ``pred_len (B,)``.
        """
        del timesteps, temperature, topk_filter_thres, gsample, force_mask
        cond_vector = self.encode_text(conds)
        batch, device = cond_vector.shape[0], cond_vector.device
        seq_len = int(max_token_len)
        if seq_len < 2:
            raise ConfigError(f"max_token_len must be >= 2, got {max_token_len!r}")
        given_len = None
        if not is_predict_len:
            if m_lens is None:
                raise MotionError("m_lens is required when is_predict_len is False")
            given_len = check_lengths(m_lens).to(device)
            if len(given_len) != batch or int(given_len.max()) > seq_len:
                raise MotionError(
                    f"m_lens {given_len.tolist()} must give one length in [1, {seq_len}] per "
                    f"condition ({batch})"
                )
        ids = torch.full((batch, seq_len + 1), self.pad_id, dtype=torch.long, device=device)
        ids, _ = self.gen_one(ids, cond_vector, seq_len, None, cond_scale,
                              pred_len=is_predict_len, generator=generator)
        if given_len is None:
            # Slot seq_len always holds pad (>= END), so pred_len <= seq_len here.
            ids, pred_len = self.pad_after_end(ids)
        else:
            pred_len = given_len
        padding_mask = ~lengths_to_mask(pred_len, seq_len + 1)
        ids = ids.scatter(-1, pred_len[:, None], self.end_id)

        scores = torch.where(padding_mask, 1e5, 0.0)
        num_token_masked = torch.round(0.5 * pred_len).clamp(min=1)
        ranks = scores.argsort(dim=1, stable=True).argsort(dim=1)
        is_mask = ranks < num_token_masked.unsqueeze(-1)
        cons_pos = (~is_mask & ~padding_mask) | (ids == self.end_id)
        cond_idx = torch.where(cons_pos, ids, self.pad_id)

        ids, _ = self.gen_one(ids, cond_vector, seq_len, cond_idx, REFINE_COND_SCALE,
                              pred_len=False, generator=generator)
        ids = torch.where(cons_pos, cond_idx, ids)
        return ids, pred_len
