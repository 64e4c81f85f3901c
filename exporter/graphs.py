"""Export-ready torch modules: each wraps one hmu network and computes one bundle stage.

Why wrappers instead of exporting the models as they are: the legacy TorchScript exporter
bakes the sequence length into ``nn.MultiheadAttention``'s reshapes (runtime.md §5), and the
dynamo exporter takes 5-15 s per graph. Here attention is written out with ``reshape`` on the
traced sizes (same weights, same maths: ``softmax(q k^T / sqrt(d) + mask) v``), so the legacy
exporter gives graphs with dynamic batch and length in well under a second. Each wrapper's
output is checked against the model's own forward at export time (``exporter.export``).

Stage I/O (what ``exporter.runtime`` feeds them):
- ``MaskStepGraph``: ids (B, n) int64, cond (B, D), padding_mask (B, n) bool -> (B, n, V);
- ``BAMMStepGraph``: ids (B, S) int64, cond (B, D), cond_idx (B, S) int64 (``pad_id`` = not a
  condition; all ``pad_id`` is the plain causal pass) -> (B, S + 1, V + 1);
- ``ResStepGraph``: ids (B, n, q) int64 of layers 0..q-1, cond, padding_mask -> logits of
  layer q (B, n, V + 1); the history sum is inside the graph;
- ``DecoderGraph``: ids (B, n, Q) int64 (-1 = no code) -> (B, 4n, 263) normalised features;
- ``LengthGraph``: cond (B, D) -> (B, C) logits; ``MiniLMGraph``/``CLIPGraph``: text encoders.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.errors import ConfigError

_NEG_INF = float("-inf")


def _attention(attn: nn.MultiheadAttention, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Self-attention of ``x`` (B, L, d) with an additive ``bias`` broadcastable to
    (B, heads, L, L), using ``attn``'s packed in-projection and out-projection."""
    heads, d = attn.num_heads, attn.head_dim
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], t.shape[1], heads, d).transpose(1, 2)  # (B, h, L, d)

    scores = split(q) @ split(k).transpose(-1, -2) * (d ** -0.5) + bias
    ctx = scores.softmax(dim=-1) @ split(v)  # (B, h, L, d)
    ctx = ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], heads * d)
    return F.linear(ctx, attn.out_proj.weight, attn.out_proj.bias)


def _post_ln_encoder(encoder: nn.TransformerEncoder, x: torch.Tensor,
                     bias: torch.Tensor) -> torch.Tensor:
    """``nn.TransformerEncoder`` (post-LN, GELU, eval) over batch-first ``x`` (B, L, d)."""
    for layer in encoder.layers:
        if layer.norm_first or getattr(layer, "activation_relu_or_gelu", 0) != 2:
            raise ConfigError("only post-LN GELU encoder layers (MoMask/BAMM's) can be exported")
        x = layer.norm1(x + _attention(layer.self_attn, x, bias))
        x = layer.norm2(x + layer.linear2(F.gelu(layer.linear1(x))))
    if encoder.norm is not None:
        x = encoder.norm(x)
    return x


def _key_padding_bias(padding_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool, True = pad -> (B, 1, 1, L) additive bias."""
    zeros = torch.zeros_like(padding_mask, dtype=torch.float32)
    return zeros.masked_fill(padding_mask, _NEG_INF)[:, None, None, :]


def _output(model: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``OutputProcess`` on batch-first ``h`` (B, L, d) -> (B, L, out)."""
    out = model.output_process
    return out.poseFinal(out.LayerNorm(F.gelu(out.dense(h))))


class MaskStepGraph(nn.Module):
    """MoMask ``trans_forward`` (eval), logits permuted to (B, n, V)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, cond: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.input_process.poseEmbedding(m.token_emb(ids))  # (B, n, latent)
        x = x + m.position_enc.pe[: ids.shape[1]].transpose(0, 1)  # PE on motion tokens only
        c = m.cond_emb(cond)[:, None, :]
        xseq = torch.cat([c, x], dim=1)
        pad = torch.cat([torch.zeros_like(padding_mask[:, :1]), padding_mask], dim=1)
        h = _post_ln_encoder(m.seqTransEncoder, xseq, _key_padding_bias(pad))[:, 1:]
        return _output(m, h)


class BAMMStepGraph(nn.Module):
    """BAMM ``_network`` (eval) with its causal + condition attention, logits (B, S+1, V+1)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, cond: torch.Tensor,
                cond_idx: torch.Tensor) -> torch.Tensor:
        m = self.model
        c = m.cond_emb(cond)[:, None, :]
        x = m.input_process.poseEmbedding(m.token_emb(ids))
        xseq = torch.cat([c, x], dim=1)  # (B, L, latent), L = S + 1
        xseq = xseq + m.position_enc.pe[: xseq.shape[1]].transpose(0, 1)  # text token too
        pos = torch.arange(xseq.shape[1])
        causal = pos[:, None] >= pos[None, :]  # (L, L)
        cond_pos = torch.cat([torch.ones_like(cond_idx[:, :1], dtype=torch.bool),
                              cond_idx != m.pad_id], dim=1)  # (B, L)
        # bamm_attention_mask: clear rows of condition queries, then open condition columns.
        allowed = (causal[None] & ~cond_pos[:, :, None]) | cond_pos[:, None, :]
        bias = torch.zeros_like(allowed, dtype=torch.float32).masked_fill(~allowed, _NEG_INF)
        h = _post_ln_encoder(m.seqTransEncoder, xseq, bias[:, None])
        return _output(m, h)


class ResStepGraph(nn.Module):
    """Residual ``trans_forward`` + ``output_project`` for layer q = ids.shape[-1]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        table = model.token_embed_weight.detach()  # (Q-1, V, code_dim)
        self.rows = int(table.shape[1])
        self.register_buffer("table", table.reshape(-1, table.shape[-1]).clone())
        self.register_buffer("proj", model.output_proj_weight.detach().clone())
        bias = model.output_proj_bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, ids: torch.Tensor, cond: torch.Tensor,
                padding_mask: torch.Tensor) -> torch.Tensor:
        m = self.model
        # layer j's ids index table j: offset them into the flattened (Q-1) * V rows
        offsets = torch.arange(ids.shape[-1]) * self.rows
        history = F.embedding(ids + offsets, self.table).sum(dim=2)  # (B, n, code_dim)
        q = torch.ones_like(ids[:, 0, :]).sum(dim=-1)  # (B,) the layer being predicted
        x = m.input_process.poseEmbedding(history)
        x = x + m.position_enc.pe[: ids.shape[1]].transpose(0, 1)
        q_emb = m.quant_emb(F.one_hot(q, m.num_quantizers).float())[:, None, :]
        c = m.cond_emb(cond)[:, None, :]
        xseq = torch.cat([c, q_emb, x], dim=1)
        # two prefix columns even for a 1-token motion (padding_mask[:, :2] has only one)
        prefix = torch.zeros_like(padding_mask[:, :1])
        pad = torch.cat([prefix, prefix, padding_mask], dim=1)
        h = _output(m, _post_ln_encoder(m.seqTransEncoder, xseq, _key_padding_bias(pad))[:, 2:])
        logits = torch.einsum("bvc,bnc->bnv", self.proj[q - 1], h)
        if self.bias is not None:  # official `output += output + bias` (momask.md §7 item 12)
            logits = logits + (logits + self.bias[q - 1][:, None, :])
        return logits


class DecoderGraph(nn.Module):
    """``RVQVAE.forward_decoder`` over all Q layers; -1 ids decode as zero vectors."""

    def __init__(self, vq: nn.Module) -> None:
        super().__init__()
        self.decoder = vq.decoder
        books = vq.quantizer.codebooks.detach()  # (Q, K, C)
        self.rows = int(books.shape[1])
        self.register_buffer("books", books.reshape(-1, books.shape[-1]).clone())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(ids.shape[-1]) * self.rows
        real = ids >= 0
        codes = F.embedding(ids.clamp(min=0) + offsets, self.books) * real[..., None]
        x = codes.sum(dim=2).permute(0, 2, 1)  # (B, C, n)
        return self.decoder(x)  # (B, 4n, D): the decoder permutes back itself


class LengthGraph(nn.Module):
    """``LengthEstimator`` logits (eval)."""

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        self.output = estimator.output

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.output(cond)


class MiniLMGraph(nn.Module):
    """``SentenceBert``: ids, attention_mask (B, L) int64 -> (B, 384) unit vectors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(ids, attention_mask)


class CLIPGraph(nn.Module):
    """CLIP text tower on ids (B, L) int64 cut after the last end token -> (B, embed_dim)."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.tower
        n = ids.shape[1]
        x = t.token_embedding(ids) + t.positional_embedding[:n]
        pos = torch.arange(n)
        future = pos[None, :] > pos[:, None]  # (L, L) causal
        bias = torch.zeros_like(future, dtype=torch.float32).masked_fill(future, _NEG_INF)
        for block in t.transformer.resblocks:  # pre-LN, QuickGELU
            x = x + _attention(block.attn, block.ln_1(x), bias)
            x = x + block.mlp(block.ln_2(x))
        x = t.ln_final(x)
        eot = ids.argmax(dim=-1)
        return x[torch.arange(x.shape[0]), eot] @ t.text_projection
