"""Residual VQ: a stack of ``QuantizeEMAReset`` layers, each quantising what the previous
ones left (official ``ResidualVQ``, reference/momask.md §1.3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.models.rvq.quantizer import QuantizeEMAReset


class ResidualVQ(nn.Module):
    """``num_quantizers`` codebooks over (B, C, T) latents.

    With ``shared_codebook`` one quantiser object is repeated, so ``state_dict()`` still lists
    ``layers.{i}.codebook`` for every i (duplicate references, as upstream). Quantize dropout
    (training only): with probability ``quantize_dropout_prob`` per batch, draw
    ``k ~ randrange(cutoff, Q)`` and skip layers with index > k, which then emit id −1.
    """

    def __init__(
        self, num_quantizers: int, shared_codebook: bool = False,
        quantize_dropout_prob: float = 0.5, quantize_dropout_cutoff_index: int = 0,
        *, nb_code: int, code_dim: int, mu: float = 0.99,
    ) -> None:
        super().__init__()
        self.num_quantizers = num_quantizers
        if shared_codebook:
            layer = QuantizeEMAReset(nb_code, code_dim, mu)
            self.layers = nn.ModuleList([layer for _ in range(num_quantizers)])
        else:
            self.layers = nn.ModuleList(
                [QuantizeEMAReset(nb_code, code_dim, mu) for _ in range(num_quantizers)]
            )
        if quantize_dropout_cutoff_index < 0:
            raise ValueError("quantize_dropout_cutoff_index must be >= 0")
        self.quantize_dropout_prob = quantize_dropout_prob
        self.quantize_dropout_cutoff_index = quantize_dropout_cutoff_index

    @property
    def codebooks(self) -> torch.Tensor:
        """(Q, nb_code, code_dim) stacked codebooks."""
        return torch.stack([layer.codebook for layer in self.layers], dim=0)

    def get_codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, n, q) ids, q ≤ Q -> (Q, B, n, C) vectors.

        Missing layers are right-padded with −1, and every −1 id gives the **zero vector**
        (momask.md §7 item 5), so a partial or padded token grid still decodes.
        """
        q = indices.shape[-1]
        if q > self.num_quantizers:
            raise ValueError(f"indices have {q} layers but the model has {self.num_quantizers}")
        if q < self.num_quantizers:
            indices = F.pad(indices, (0, self.num_quantizers - q), value=-1)
        ids = indices.long().permute(2, 0, 1)  # (B, n, Q) -> (Q, B, n)
        missing = ids == -1
        codebooks = self.codebooks  # (Q, K, C)
        codes = torch.stack(
            [F.embedding(ids[i].masked_fill(missing[i], 0), codebooks[i])
             for i in range(self.num_quantizers)]
        )  # (Q, B, n, C)
        return codes.masked_fill(missing.unsqueeze(-1), 0.0)

    def get_codebook_entry(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, n, q) ids -> (B, C, n) summed latent."""
        return self.get_codes_from_indices(indices).sum(dim=0).permute(0, 2, 1)

    def forward(
        self, x: torch.Tensor, return_all_codes: bool = False,
        sample_codebook_temp: float | None = None, force_dropout_index: int = -1,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Quantise (B, C, T) latents through all layers.

        Returns ``(quantized (B, C, T), ids (B, T, Q), commit_loss, perplexity)`` (+ the
        (Q, B, T, C) codes with ``return_all_codes``). Loss and perplexity are averaged over
        the layers that ran.
        """
        num_quant = self.num_quantizers
        # Upstream draws these with Python's `random`; we use torch's RNG (or `generator`) so
        # one seed controls a whole training step. Same distribution, different stream.
        dropout = False
        start_drop = num_quant
        if self.training and self.quantize_dropout_prob > 0:
            draw = torch.rand((), generator=generator).item()
            if draw < self.quantize_dropout_prob:
                dropout = True
                low = self.quantize_dropout_cutoff_index
                start_drop = int(torch.randint(low, num_quant, (), generator=generator).item())
        if force_dropout_index >= 0:
            dropout, start_drop = True, force_dropout_index
        null_ids = torch.full((x.shape[0], x.shape[-1]), -1, device=x.device, dtype=torch.long)

        quantized_out = torch.zeros_like(x)
        residual = x
        all_indices, all_losses, all_perplexity = [], [], []
        for index, layer in enumerate(self.layers):
            if dropout and index > start_drop:
                all_indices.append(null_ids)
                continue
            quantized, ids, loss, perplexity = layer(
                residual, return_idx=True, temperature=sample_codebook_temp, generator=generator
            )
            residual = residual - quantized.detach()
            quantized_out = quantized_out + quantized
            all_indices.append(ids)
            all_losses.append(loss)
            all_perplexity.append(perplexity)
        indices = torch.stack(all_indices, dim=-1)
        commit = sum(all_losses) / len(all_losses)
        perplexity = sum(all_perplexity) / len(all_perplexity)
        if return_all_codes:
            return quantized_out, indices, commit, perplexity, self.get_codes_from_indices(indices)
        return quantized_out, indices, commit, perplexity

    def quantize(
        self, x: torch.Tensor, return_latent: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Deterministic (τ = 0) quantisation of (B, C, T): ids (B, T, Q) and, with
        ``return_latent``, the per-layer quantised vectors (Q, B, C, T).

        In training mode this still runs the EMA update (momask.md §1.3 gotcha): keep the VQ
        in eval mode when only encoding.
        """
        residual = x
        all_indices, all_codes = [], []
        for layer in self.layers:
            quantized, ids, _loss, _perplexity = layer(residual, return_idx=True)
            residual = residual - quantized.detach()
            all_indices.append(ids)
            all_codes.append(quantized)
        code_idx = torch.stack(all_indices, dim=-1)
        if return_latent:
            return code_idx, torch.stack(all_codes, dim=0)
        return code_idx
