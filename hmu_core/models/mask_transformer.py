"""MoMask's base-layer masked token transformer, checkpoint-compatible with the official one.

Restated from ``reference/momask.md`` §2.3 (official ``MaskTransformer`` in
``models/mask_transformer/transformer.py``). State-dict keys, shapes and the methods official
scripts call (``trans_forward``, ``forward``, ``forward_with_cond_scale``, ``generate``,
``encode_text``, ``mask_cond``, ``parameters_wo_clip``) keep their official names and argument
order. Differences: no CLIP inside (``attach_text_encoder`` or condition vectors instead of
texts), and every random step also accepts a ``torch.Generator``.

Tokens (momask.md §7 item 6): codes ``0..num_tokens-1``, ``mask_id = num_tokens``,
``pad_id = num_tokens + 1``; ``token_emb`` has ``num_tokens + 2`` rows; logits cover only the
``num_tokens`` codes. There is no end token.
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
    cosine_schedule,
    eval_no_grad,
    get_mask_subset_prob,
    gumbel_sample,
    init_weights,
    lengths_to_mask,
    top_k,
    uniform,
    validate_transformer_config,
)

Cond = Sequence[str] | torch.Tensor


@dataclass(frozen=True)
class MaskTransformerConfig:
    """Official ``MaskTransformer(...)`` constructor keys (``opt.num_tokens`` -> ``num_tokens``).

    Defaults are the released HumanML3D model ``t2m_nlayer8_nhead6_ld384_ff1024_cdp0.1_rvq6ns``.
    opt.txt spells ``num_layers``/``num_heads`` as ``n_layers``/``n_heads``
    (``transformer_common.OPT_ALIASES``); fields marked derived are not in opt.txt and come
    from the VQ's opt (``code_dim``, ``num_tokens``) or are hard-coded upstream.
    """

    code_dim: int = field(default=512, metadata={"opt": "derived"})  # VQ code width
    cond_mode: str = field(default="text", metadata={"opt": "derived"})
    latent_dim: int = 384  # transformer width
    ff_size: int = 1024  # feed-forward width
    num_layers: int = 8
    num_heads: int = 6
    dropout: float = 0.2
    clip_dim: int = field(default=512, metadata={"opt": "derived"})  # text vector width
    cond_drop_prob: float = 0.1  # CFG training dropout of the text condition
    clip_version: str = field(default="ViT-B/32", metadata={"opt": "derived"})
    num_tokens: int = field(default=512, metadata={"opt": "derived"})  # VQ nb_code
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)
    opt_key_names: Mapping[str, str] = field(default_factory=lambda: dict(OPT_KEY_NAMES),
                                             compare=False)

    def __post_init__(self) -> None:
        validate_transformer_config(self)


class MaskTransformer(TextConditioned):
    """Text-conditioned masked transformer over RVQ layer-0 codes (MoMask M-transformer)."""

    def __init__(self, config: MaskTransformerConfig) -> None:
        super().__init__()
        self._adopt_config(config, MaskTransformerConfig)
        self.mask_id = config.num_tokens
        self.pad_id = config.num_tokens + 1

        # Module creation order = official order, so torch.manual_seed gives the official init
        # and state_dict() lists keys in the official order.
        self.input_process = InputProcess(config.code_dim, config.latent_dim)
        self.position_enc = PositionalEncoding(config.latent_dim, config.dropout)
        self.seqTransEncoder = build_encoder(config.latent_dim, config.num_heads, config.ff_size,
                                             config.dropout, config.num_layers)
        self.cond_emb = nn.Linear(config.clip_dim, config.latent_dim)
        self.output_process = OutputProcess(config.num_tokens, config.latent_dim)
        self.token_emb = nn.Embedding(config.num_tokens + 2, config.code_dim)
        self.apply(init_weights)
        self.noise_schedule = cosine_schedule

    def trans_forward(self, motion_ids: torch.Tensor, cond: torch.Tensor,
                      padding_mask: torch.Tensor, force_mask: bool = False) -> torch.Tensor:
        """One pass of the network.

        Args:
            motion_ids: ``(B, n)`` int64 ids in ``[0, num_tokens + 2)``.
            cond: ``(B, clip_dim)`` condition vectors.
            padding_mask: ``(B, n)`` bool, True at padding.
            force_mask: use the null (zero) condition.
        Returns:
            ``(B, num_tokens, n)`` logits.
        """
        cond = self.mask_cond(cond, force_mask=force_mask)
        x = self.input_process(self.token_emb(motion_ids))  # (n, B, latent)
        c = self.cond_emb(cond).unsqueeze(0)  # (1, B, latent)
        # The text token is prepended after the PE, so it gets none (momask.md §7 item 7).
        xseq = torch.cat([c, self.position_enc(x)], dim=0)  # (n+1, B, latent)
        padding_mask = torch.cat([torch.zeros_like(padding_mask[:, :1]), padding_mask], dim=1)
        output = self.seqTransEncoder(xseq, src_key_padding_mask=padding_mask)[1:]
        return self.output_process(output)  # (n, B, latent) -> (B, num_tokens, n)

    def forward(self, ids: torch.Tensor, y: Cond, m_lens: torch.Tensor, *,
                generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Training loss: cosine-scheduled masking plus BERT corruption (momask.md §2.3).

        The RNG calls are the official ones in the official order (uniform, rand().argsort,
        bernoulli, randint, bernoulli), so ``torch.manual_seed`` reproduces the official
        corrupted input. Cond dropout and Dropout in train mode use the global RNG.

        Args:
            ids: ``(B, n)`` int64 RVQ layer-0 codes (padding positions may hold anything).
            y: ``B`` texts or ``(B, clip_dim)`` condition vectors.
            m_lens: ``(B,)`` token lengths (frames // 4).
            generator: RNG for the masking draws; ``None`` uses torch's global RNG.
        Returns:
            ``(ce_loss, pred_id (B, n), acc)``.
        """
        if ids.ndim != 2:
            raise MotionError(f"ids must be (B, n) token ids, got shape {tuple(ids.shape)}")
        bs, ntokens = ids.shape
        device = ids.device
        m_lens = check_lengths(m_lens).to(device)
        non_pad_mask = lengths_to_mask(m_lens, ntokens)  # (B, n), False at padding
        ids = torch.where(non_pad_mask, ids, self.pad_id)
        with torch.no_grad():
            cond_vector = self.encode_text(y)

        # Masked count uses the padded length n, not m_len (momask.md §7 item 9).
        rand_mask_probs = self.noise_schedule(uniform((bs,), device=device, generator=generator))
        num_token_masked = (ntokens * rand_mask_probs).round().clamp(min=1)
        batch_randperm = torch.rand((bs, ntokens), device=device, generator=generator)
        mask = batch_randperm.argsort(dim=-1) < num_token_masked.unsqueeze(-1)
        mask &= non_pad_mask
        labels = torch.where(mask, ids, self.mask_id)  # loss only on masked, real positions

        # BERT corruption: 10 % random code, then 88 % of the rest -> [MASK], others kept.
        mask_rid = get_mask_subset_prob(mask, 0.1, generator)
        rand_id = torch.randint_like(ids, high=self.num_tokens, generator=generator)
        x_ids = torch.where(mask_rid, rand_id, ids)
        mask_mid = get_mask_subset_prob(mask & ~mask_rid, 0.88, generator)
        x_ids = torch.where(mask_mid, self.mask_id, x_ids)

        logits = self.trans_forward(x_ids, cond_vector, ~non_pad_mask)
        return cal_performance(logits, labels, ignore_index=self.mask_id)

    def forward_with_cond_scale(self, motion_ids: torch.Tensor, cond_vector: torch.Tensor,
                                padding_mask: torch.Tensor, cond_scale: float = 3,
                                force_mask: bool = False) -> torch.Tensor:
        """Classifier-free guidance ``u + s (c - u)``; ``(B, num_tokens, n)`` logits.

        ``cond_scale == 1`` runs only the conditional pass, ``force_mask`` only the null one.
        """
        if force_mask:
            return self.trans_forward(motion_ids, cond_vector, padding_mask, force_mask=True)
        logits = self.trans_forward(motion_ids, cond_vector, padding_mask)
        if cond_scale == 1:
            return logits
        aux_logits = self.trans_forward(motion_ids, cond_vector, padding_mask, force_mask=True)
        return aux_logits + (logits - aux_logits) * cond_scale

    @eval_no_grad
    def generate(self, conds: Cond, m_lens: torch.Tensor, timesteps: int,
                 cond_scale: float, temperature: float = 1, topk_filter_thres: float = 0.9,
                 gsample: bool = False, force_mask: bool = False, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Iterative mask-predict decoding (momask.md §2.3), eval mode, no grad.

        Args:
            conds: ``B`` texts or ``(B, clip_dim)`` condition vectors.
            m_lens: ``(B,)`` token lengths; the output has ``max(m_lens)`` columns.
            timesteps: decoding steps over ``linspace(0, 1, timesteps)`` (both ends).
            cond_scale: CFG scale.
            temperature: softmax / Gumbel temperature.
            topk_filter_thres: keep the top ``ceil((1 - thres) V)`` logits (0.9 -> 52 of 512).
            gsample: Gumbel-max sampling instead of categorical.
            force_mask: unconditional generation.
            generator: RNG for the sampling; ``None`` uses torch's global RNG.
        Returns:
            ``(B, max(m_lens))`` int64 codes, ``-1`` at padded positions.
        """
        device = self.token_emb.weight.device
        m_lens = check_lengths(m_lens).to(device)
        cond_vector = self._batch_cond(conds, len(m_lens))
        padding_mask = ~lengths_to_mask(m_lens, int(m_lens.max()))
        ids = torch.where(padding_mask, self.pad_id, self.mask_id)  # start all-masked
        scores = torch.where(padding_mask, 1e5, 0.0)
        ids = self._mask_predict(ids, scores, cond_vector, padding_mask, m_lens, None, timesteps,
                                 cond_scale, temperature, topk_filter_thres, gsample, force_mask,
                                 generator)
        return torch.where(padding_mask, -1, ids)

    @eval_no_grad
    def edit(self, conds: Cond, tokens: torch.Tensor, m_lens: torch.Tensor, timesteps: int,
             cond_scale: float, temperature: float = 1, topk_filter_thres: float = 0.9,
             gsample: bool = False, force_mask: bool = False,
             edit_mask: torch.Tensor | None = None, padding_mask: torch.Tensor | None = None, *,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Temporal inpainting (official ``edit``, ``edit_t2m.py``): re-generate the tokens
        inside ``edit_mask`` and keep the others.

        With ``edit_mask=None`` ("mask-free" mode) every real token may be re-masked, at a
        constant ratio of 0.16 per step; otherwise the cosine schedule runs over the edit
        region's length, starting from ``mask_id`` inside it.

        Args:
            tokens: ``(B, n)`` base-layer codes to edit (padded positions are ignored).
            edit_mask: ``(B, n)`` bool, True where tokens are re-generated.
            padding_mask: ``(B, n)`` bool, True at padding; default from ``m_lens``.
            Others as in ``generate``.
        Returns:
            ``(B, n)`` int64 codes, ``-1`` at padded positions.
        """
        if tokens.ndim != 2:
            raise MotionError(f"tokens must be (B, n) codes, got shape {tuple(tokens.shape)}")
        device = self.token_emb.weight.device
        tokens = tokens.to(device)
        if padding_mask is None:
            padding_mask = ~lengths_to_mask(check_lengths(m_lens).to(device), tokens.shape[1])
        if padding_mask.shape != tokens.shape or (
                edit_mask is not None and edit_mask.shape != tokens.shape):
            raise MotionError(
                f"padding_mask and edit_mask must match tokens {tuple(tokens.shape)}"
            )
        cond_vector = self._batch_cond(conds, tokens.shape[0])
        # Padded keys are masked out of attention, so their ids change no real output; pad_id
        # there keeps a -1 out of the embedding lookup (upstream indexes with what it gets).
        tokens = torch.where(padding_mask, self.pad_id, tokens)
        free = edit_mask is None
        edit_mask = ~padding_mask if free else edit_mask & ~padding_mask
        edit_len = edit_mask.sum(dim=-1)
        ids = tokens if free else torch.where(edit_mask, self.mask_id, tokens)
        scores = torch.where(edit_mask, 0.0, 1e5)
        ids = self._mask_predict(ids, scores, cond_vector, padding_mask, edit_len,
                                 edit_mask if free else None, timesteps, cond_scale, temperature,
                                 topk_filter_thres, gsample, force_mask, generator)
        return torch.where(padding_mask, -1, ids)

    def _batch_cond(self, conds: Cond, batch_size: int) -> torch.Tensor:
        cond_vector = self.encode_text(conds)
        if cond_vector.shape[0] != batch_size:
            raise ConfigError(f"got {cond_vector.shape[0]} conditions for a batch of {batch_size}")
        return cond_vector

    def _mask_predict(self, ids: torch.Tensor, scores: torch.Tensor, cond_vector: torch.Tensor,
                      padding_mask: torch.Tensor, count_len: torch.Tensor,
                      free_mask: torch.Tensor | None, timesteps: int, cond_scale: float,
                      temperature: float, topk_filter_thres: float, gsample: bool,
                      force_mask: bool, generator: torch.Generator | None) -> torch.Tensor:
        """The shared loop of ``generate`` and ``edit``.

        ``count_len`` (B,) scales the mask ratio (true lengths, or the edit lengths);
        ``free_mask`` selects edit's mask-free mode (constant ratio 0.16, confidence reset
        only outside it).
        """
        if int(timesteps) < 1:
            raise ConfigError(f"timesteps must be >= 1, got {timesteps!r}")
        for timestep in torch.linspace(0, 1, int(timesteps), device=ids.device):
            # Per-sample count from the true length, at least 1 (momask.md §7 item 9).
            ratio = 0.16 if free_mask is not None else self.noise_schedule(timestep)
            num_token_masked = torch.round(ratio * count_len).clamp(min=1)
            # Re-mask the lowest-confidence tokens; kept ones carry 1e5 and never qualify.
            ranks = scores.argsort(dim=1).argsort(dim=1)
            is_mask = ranks < num_token_masked.unsqueeze(-1)
            ids = torch.where(is_mask, self.mask_id, ids)

            logits = self.forward_with_cond_scale(ids, cond_vector=cond_vector,
                                                  padding_mask=padding_mask,
                                                  cond_scale=cond_scale, force_mask=force_mask)
            logits = logits.permute(0, 2, 1)  # (B, n, num_tokens)
            filtered_logits = top_k(logits, topk_filter_thres, dim=-1)
            if gsample:
                pred_ids = gumbel_sample(filtered_logits, temperature=temperature, dim=-1,
                                         generator=generator)
            else:
                # Temperature inside the softmax (upstream fix d4d3412, momask.md §2.3).
                probs = F.softmax(filtered_logits / temperature, dim=-1)
                pred_ids = categorical_sample(probs, generator)
            ids = torch.where(is_mask, pred_ids, ids)

            # Confidence from the unfiltered, un-tempered CFG logits (momask.md §7 item 10).
            probs_without_temperature = logits.softmax(dim=-1)
            scores = probs_without_temperature.gather(2, pred_ids.unsqueeze(-1)).squeeze(-1)
            keep = ~free_mask if free_mask is not None else ~is_mask
            scores = scores.masked_fill(keep, 1e5)
        return ids
