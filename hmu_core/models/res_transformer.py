"""MoMask's residual token transformer (RVQ layers 1..Q-1), checkpoint-compatible.

Restated from ``reference/momask.md`` §2.4 (official ``ResidualTransformer``). Keys, shapes and
the official method names and argument order are kept (``trans_forward``, ``output_project``,
``forward``, ``forward_with_cond_scale``, ``generate``, ``process_embed_proj_weight``,
``encode_text``, ``mask_cond``). No CLIP inside; every random step also takes a generator.

Tokens (momask.md §7 item 6): ``pad_id = num_tokens``, tables have ``num_tokens + 1`` rows and
the logits include the pad class; there is no mask token.

Embedding / projection tables (momask.md §7 item 12), ``V = num_tokens + 1``:

- ``share_weight=True`` (released): parameters ``embed_proj_shared_weight (Q-2, V, code_dim)``,
  ``token_embed_weight_ (1, V, code_dim)``, ``output_proj_weight_ (1, V, code_dim)``; derived
  ``token_embed_weight = [token_embed_weight_, shared]`` and
  ``output_proj_weight = [shared, output_proj_weight_]``, so the projection that predicts layer
  q is the input embedding of layer q. No bias.
- ``share_weight=False``: parameters ``output_proj_weight (Q-1, V, code_dim)``,
  ``output_proj_bias (Q, V)``, ``token_embed_weight (Q-1, V, code_dim)``; logits are
  ``2 W h + b`` (the official ``output += output + bias`` quirk, reproduced).
- ``shared_codebook=True`` stores no tables at all upstream (a broken path): refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    check_lengths,
    eval_no_grad,
    gumbel_sample,
    init_weights,
    lengths_to_mask,
    q_schedule,
    top_k,
    validate_transformer_config,
)

Cond = Sequence[str] | torch.Tensor


@dataclass(frozen=True)
class ResidualTransformerConfig:
    """Official ``ResidualTransformer(...)`` constructor keys (``opt.`` prefixes dropped).

    Defaults are the released ``tres_nlayer8_ld384_ff1024_rvq6ns_cdp0.2_sw``. ``code_dim``,
    ``num_tokens``, ``num_quantizers`` and ``shared_codebook`` come from the VQ's opt (derived,
    not in this opt.txt); ``n_layers``/``n_heads`` are aliased as for the mask transformer.
    """

    code_dim: int = field(default=512, metadata={"opt": "derived"})
    cond_mode: str = field(default="text", metadata={"opt": "derived"})
    latent_dim: int = 384
    ff_size: int = 1024
    num_layers: int = 8
    num_heads: int = 6
    dropout: float = 0.2
    clip_dim: int = field(default=512, metadata={"opt": "derived"})
    cond_drop_prob: float = 0.2
    # From the VQ's opt upstream (shared_codebook=vq_opt.shared_codebook), hence derived.
    shared_codebook: bool = field(default=False, metadata={"opt": "derived"})
    clip_version: str = field(default="ViT-B/32", metadata={"opt": "derived"})
    share_weight: bool = True  # tie layer-q projection to layer-q input embedding
    num_tokens: int = field(default=512, metadata={"opt": "derived"})  # VQ nb_code
    num_quantizers: int = field(default=6, metadata={"opt": "derived"})  # VQ layers Q
    extra: Mapping[str, str] = field(default_factory=dict, compare=False)
    opt_key_names: Mapping[str, str] = field(default_factory=lambda: dict(OPT_KEY_NAMES),
                                             compare=False)

    def __post_init__(self) -> None:
        validate_transformer_config(self)
        if self.shared_codebook:
            raise ConfigError(
                "ResidualTransformerConfig.shared_codebook=True is unsupported: upstream it "
                "registers no embedding tables, so they are never trained or saved "
                "(momask.md §2.4); use shared_codebook=False"
            )
        if not isinstance(self.num_quantizers, int) or self.num_quantizers < 2:
            raise ConfigError(
                f"num_quantizers must be an int >= 2 (a base layer plus residuals), got "
                f"{self.num_quantizers!r}"
            )


_DERIVED = ("token_embed_weight", "output_proj_weight")


class ResidualTransformer(TextConditioned):
    """Predicts RVQ layer q from the text and the embedded sum of layers < q (MoMask R-transformer).
    """

    def __init__(self, config: ResidualTransformerConfig) -> None:
        super().__init__()
        self._adopt_config(config, ResidualTransformerConfig)
        self.num_quantizers = config.num_quantizers
        self.share_weight = config.share_weight
        self.shared_codebook = config.shared_codebook
        self.pad_id = config.num_tokens
        q, v, d = config.num_quantizers, config.num_tokens + 1, config.code_dim

        # Official creation order (same init under torch.manual_seed); the raw tables are
        # direct parameters, so state_dict() lists them first, as upstream.
        self.input_process = InputProcess(d, config.latent_dim)
        self.position_enc = PositionalEncoding(config.latent_dim, config.dropout)
        self.seqTransEncoder = build_encoder(config.latent_dim, config.num_heads, config.ff_size,
                                             config.dropout, config.num_layers)
        self.quant_emb = nn.Linear(q, config.latent_dim)
        self.cond_emb = nn.Linear(config.clip_dim, config.latent_dim)
        self.output_process = OutputProcess(d, config.latent_dim)
        if config.share_weight:
            self.embed_proj_shared_weight = nn.Parameter(
                torch.normal(mean=0, std=0.02, size=(q - 2, v, d)))
            self.token_embed_weight_ = nn.Parameter(torch.normal(mean=0, std=0.02, size=(1, v, d)))
            self.output_proj_weight_ = nn.Parameter(torch.normal(mean=0, std=0.02, size=(1, v, d)))
            self.output_proj_bias = None
        else:
            self.output_proj_weight = nn.Parameter(
                torch.normal(mean=0, std=0.02, size=(q - 1, v, d)))
            self.output_proj_bias = nn.Parameter(torch.zeros(size=(q, v)))
            self.token_embed_weight = nn.Parameter(
                torch.normal(mean=0, std=0.02, size=(q - 1, v, d)))
        self.apply(init_weights)

    def __getattr__(self, name: str) -> Any:
        # With share_weight the official code stores token_embed_weight / output_proj_weight as
        # plain tensors rebuilt by process_embed_proj_weight(); we rebuild them on every access,
        # so they can never go stale after load_state_dict or an optimiser step.
        if name in _DERIVED and self.__dict__.get("share_weight"):
            params = self.__dict__["_parameters"]
            shared = params["embed_proj_shared_weight"]
            if name == "token_embed_weight":
                return torch.cat([params["token_embed_weight_"], shared], dim=0)
            return torch.cat([shared, params["output_proj_weight_"]], dim=0)
        return super().__getattr__(name)

    def process_embed_proj_weight(self) -> None:
        """Official hook; a no-op here because the derived tables are rebuilt on access."""

    def output_project(self, logits: torch.Tensor, qids: torch.Tensor) -> torch.Tensor:
        """Project features onto the classes of each sample's layer.

        Args:
            logits: ``(B, code_dim, n)`` features from ``trans_forward``.
            qids: ``(B,)`` layer index minus one (the official call passes ``q - 1``).
        Returns:
            ``(B, num_tokens + 1, n)`` logits.
        """
        weight = self.output_proj_weight[qids]  # (B, V, code_dim)
        output = torch.einsum("bnc,bcs->bns", weight, logits)
        if self.output_proj_bias is not None:
            # Official `output += output + bias`: logits = 2 W h + b (momask.md §7 item 12).
            output = output + (output + self.output_proj_bias[qids].unsqueeze(-1))
        return output

    def trans_forward(self, motion_codes: torch.Tensor, qids: torch.Tensor, cond: torch.Tensor,
                      padding_mask: torch.Tensor, force_mask: bool = False) -> torch.Tensor:
        """One pass of the network.

        Args:
            motion_codes: ``(B, n, code_dim)`` history sum of the embedded lower layers.
            qids: ``(B,)`` int64 layer being predicted (1..Q-1).
            cond: ``(B, clip_dim)`` condition vectors.
            padding_mask: ``(B, n)`` bool, True at padding.
            force_mask: use the null (zero) condition.
        Returns:
            ``(B, code_dim, n)`` features (``output_project`` turns them into logits).
        """
        cond = self.mask_cond(cond, force_mask=force_mask)
        x = self.input_process(motion_codes)  # (n, B, latent)
        q_onehot = F.one_hot(qids, num_classes=self.num_quantizers).float().to(x.device)
        q_emb = self.quant_emb(q_onehot).unsqueeze(0)  # (1, B, latent)
        c = self.cond_emb(cond).unsqueeze(0)  # (1, B, latent)
        # Two prefix tokens, text then layer id, both without PE (momask.md §7 item 7).
        xseq = torch.cat([c, q_emb, self.position_enc(x)], dim=0)  # (n+2, B, latent)
        # Upstream slices padding_mask[:, :2], one column short for a 1-token motion (a crash).
        prefix = torch.zeros_like(padding_mask[:, :1])
        padding_mask = torch.cat([prefix, prefix, padding_mask], dim=1)
        output = self.seqTransEncoder(xseq, src_key_padding_mask=padding_mask)[2:]
        return self.output_process(output)

    def forward_with_cond_scale(self, motion_codes: torch.Tensor, q_id: int,
                                cond_vector: torch.Tensor, padding_mask: torch.Tensor,
                                cond_scale: float = 3, force_mask: bool = False) -> torch.Tensor:
        """CFG logits ``u + s (c - u)`` for layer ``q_id``: ``(B, num_tokens + 1, n)``."""
        bs = motion_codes.shape[0]
        qids = torch.full((bs,), q_id, dtype=torch.long, device=motion_codes.device)
        if force_mask:
            feats = self.trans_forward(motion_codes, qids, cond_vector, padding_mask,
                                       force_mask=True)
            return self.output_project(feats, qids - 1)
        logits = self.output_project(
            self.trans_forward(motion_codes, qids, cond_vector, padding_mask), qids - 1)
        if cond_scale == 1:
            return logits
        aux_logits = self.output_project(
            self.trans_forward(motion_codes, qids, cond_vector, padding_mask, force_mask=True),
            qids - 1)
        return aux_logits + (logits - aux_logits) * cond_scale

    def forward(self, all_indices: torch.Tensor, y: Cond, m_lens: torch.Tensor, *,
                generator: torch.Generator | None = None,
                active_q_layers: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Training loss: predict one random layer q >= 1 per sample, all positions at once.

        Args:
            all_indices: ``(B, n, Q)`` int64 RVQ codes.
            y: ``B`` texts or ``(B, clip_dim)`` condition vectors.
            m_lens: ``(B,)`` token lengths.
            generator: RNG for the layer draw (``q_schedule``); ``None``: global RNG.
            active_q_layers: ``(B,)`` layers to train instead of drawing them (tests, curricula).
        Returns:
            ``(ce_loss, pred_id (B, n), acc)``; the loss ignores ``pad_id``.
        """
        if all_indices.ndim != 3 or all_indices.shape[-1] != self.num_quantizers:
            raise MotionError(
                f"all_indices must be (B, n, {self.num_quantizers}) codes, got "
                f"{tuple(all_indices.shape)}"
            )
        bs, ntokens, num_quant_layers = all_indices.shape
        device = all_indices.device
        m_lens = check_lengths(m_lens).to(device)
        non_pad_mask = lengths_to_mask(m_lens, ntokens)  # (B, n)
        all_indices = torch.where(non_pad_mask.unsqueeze(-1), all_indices, self.pad_id)
        if active_q_layers is None:
            active_q_layers = q_schedule(bs, low=1, high=num_quant_layers, device=device,
                                         generator=generator)
        else:
            active_q_layers = torch.as_tensor(active_q_layers, device=device).long()
            if active_q_layers.shape != (bs,) or not bool(
                    ((active_q_layers >= 1) & (active_q_layers < num_quant_layers)).all()):
                raise ConfigError(
                    f"active_q_layers must be ({bs},) layers in [1, {num_quant_layers - 1}], "
                    f"got {active_q_layers.tolist()}"
                )
        history_sum, active_indices = self._history(all_indices, active_q_layers)
        with torch.no_grad():
            cond_vector = self.encode_text(y)
        feats = self.trans_forward(history_sum, active_q_layers, cond_vector, ~non_pad_mask)
        logits = self.output_project(feats, active_q_layers - 1)
        return cal_performance(logits, active_indices, ignore_index=self.pad_id)

    def _history(self, all_indices: torch.Tensor, active_q_layers: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of this model's own embeddings of layers < q, and the ids of layer q.

        Returns ``history_sum (B, n, code_dim)`` and ``labels (B, n)`` (momask.md §7 item 13).
        """
        table = self.token_embed_weight  # (Q-1, V, code_dim)
        # (B, n, code_dim, Q-1): layer j's ids embedded with table j, then a running sum.
        all_codes = torch.stack(
            [F.embedding(all_indices[..., j], table[j]) for j in range(table.shape[0])], dim=-1)
        cumsum_codes = torch.cumsum(all_codes, dim=-1)
        rows = torch.arange(all_indices.shape[0], device=all_indices.device)
        history_sum = cumsum_codes[rows, :, :, active_q_layers - 1]
        return history_sum, all_indices[rows, :, active_q_layers]

    @eval_no_grad
    def generate(self, motion_ids: torch.Tensor, conds: Cond, m_lens: torch.Tensor,
                 temperature: float = 1, topk_filter_thres: float = 0.9, cond_scale: float = 2,
                 num_res_layers: int = -1, force_mask: bool = False, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Predict the residual layers from base-layer ids, one pass per layer (always Gumbel).

        Args:
            motion_ids: ``(B, n)`` base-layer codes, ``-1`` (or anything) at padded positions.
            conds: ``B`` texts or ``(B, clip_dim)`` condition vectors.
            m_lens: ``(B,)`` token lengths.
            temperature: Gumbel temperature.
            topk_filter_thres: keep the top ``ceil((1 - thres) V)`` logits.
            cond_scale: CFG scale (official callers use 5; training validation 2).
            num_res_layers: how many residual layers to predict; ``-1`` means all.
            force_mask: unconditional generation (BAMM's copy of this class has the flag).
            generator: RNG for the Gumbel noise; ``None`` uses torch's global RNG.
        Returns:
            ``(B, n, layers)`` int64 codes; ``-1`` at padding and wherever the pad class was
            predicted at a real position (decodes to a zero code, momask.md §7 item 5).
        """
        if motion_ids.ndim != 2:
            raise MotionError(f"motion_ids must be (B, n), got shape {tuple(motion_ids.shape)}")
        device = motion_ids.device
        seq_len = motion_ids.shape[1]
        m_lens = check_lengths(m_lens).to(device)
        if len(m_lens) != motion_ids.shape[0] or int(m_lens.max()) > seq_len:
            raise MotionError(
                f"m_lens {m_lens.tolist()} do not fit motion_ids of shape {tuple(motion_ids.shape)}"
            )
        cond_vector = self.encode_text(conds)
        padding_mask = ~lengths_to_mask(m_lens, seq_len)
        motion_ids = torch.where(padding_mask, self.pad_id, motion_ids)
        if bool(((motion_ids < 0) | (motion_ids > self.pad_id)).any()):
            raise MotionError(
                f"motion_ids hold values outside [0, {self.num_tokens}) at real positions; "
                f"only padded positions (>= m_lens) may be -1"
            )
        num_quant_layers = self.num_quantizers if num_res_layers == -1 else num_res_layers + 1
        if not 1 <= num_quant_layers <= self.num_quantizers:
            raise ConfigError(
                f"num_res_layers must be -1 or in [0, {self.num_quantizers - 1}], "
                f"got {num_res_layers}"
            )
        table = self.token_embed_weight
        all_indices = [motion_ids]
        history_sum: torch.Tensor | float = 0
        for i in range(1, num_quant_layers):
            history_sum = history_sum + F.embedding(motion_ids, table[i - 1])  # previous layer
            logits = self.forward_with_cond_scale(history_sum, i, cond_vector, padding_mask,
                                                  cond_scale=cond_scale, force_mask=force_mask)
            logits = logits.permute(0, 2, 1)  # (B, n, V)
            filtered_logits = top_k(logits, topk_filter_thres, dim=-1)
            pred_ids = gumbel_sample(filtered_logits, temperature=temperature, dim=-1,
                                     generator=generator)
            motion_ids = torch.where(padding_mask, self.pad_id, pred_ids)
            all_indices.append(motion_ids)
        stacked = torch.stack(all_indices, dim=-1)
        return torch.where(stacked == self.pad_id, -1, stacked)
