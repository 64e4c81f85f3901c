"""One EMA-updated codebook with dead-code reset (official ``QuantizeEMAReset``).

The codebook is a **buffer** ``codebook (nb_code, code_dim)``, zero until the first
training-mode call; the EMA state (``code_sum``, ``code_count``, ``init``) is plain attributes
and is never saved (reference/momask.md §1.3, §7 item 2).

As upstream, a training-mode call on a freshly loaded quantiser (``init`` False) re-initialises
the codebook from the batch, overwriting the loaded one; we log a warning when that happens.
Keep a loaded VQ in ``eval()`` unless retraining it is the intent.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


def gumbel_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``-log(-log(u))`` with u ~ U(0, 1), clamped at 1e-20 inside each log as upstream."""
    u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))


class QuantizeEMAReset(nn.Module):
    """Nearest-code quantiser over (B, C, T) latents.

    Eval mode: ``argmin`` distance. Training mode: ``argmax(-d / τ + Gumbel)`` when ``τ > 0``
    (``RVQVAE.forward`` passes τ = 0.5), plain argmax when τ = 0, followed by the EMA update
    (momask.md §7 item 3).
    """

    def __init__(self, nb_code: int, code_dim: int, mu: float = 0.99) -> None:
        super().__init__()
        self.nb_code = nb_code
        self.code_dim = code_dim
        self.mu = mu
        self.reset_codebook()

    def reset_codebook(self) -> None:
        """Zero the codebook and forget the EMA state; the next training call re-initialises."""
        self.init = False
        self.code_sum: torch.Tensor | None = None
        self.code_count: torch.Tensor | None = None
        self.register_buffer("codebook", torch.zeros(self.nb_code, self.code_dim))

    def _tile(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Repeat (N, C) vectors until there are at least nb_code, with N(0, (0.01/√C)²) noise."""
        n, code_dim = x.shape
        if n >= self.nb_code:
            return x
        repeats = (self.nb_code + n - 1) // n
        out = x.repeat(repeats, 1)
        noise = torch.randn(out.shape, generator=generator, device=x.device, dtype=x.dtype)
        return out + noise * (0.01 / math.sqrt(code_dim))

    @torch.no_grad()
    def init_codebook(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """First training call: the codebook becomes the first nb_code (tiled) batch vectors."""
        if bool(self.codebook.abs().sum() > 0):
            log.warning("re-initialising a non-zero (loaded) codebook from the batch, as the "
                        "official code does; call eval() on the VQ to keep its codebook")
        self.codebook = self._tile(x, generator)[: self.nb_code].clone()
        self.code_sum = self.codebook.clone()
        self.code_count = torch.ones(self.nb_code, device=self.codebook.device)
        self.init = True

    def quantize(
        self, x: torch.Tensor, sample_codebook_temp: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(N, C) -> (N,) code ids. ‖x‖² − 2x·e + ‖e‖², as upstream (ties break the same way)."""
        k_w = self.codebook.t()
        distance = (
            torch.sum(x**2, dim=-1, keepdim=True)
            - 2 * torch.matmul(x, k_w)
            + torch.sum(k_w**2, dim=0, keepdim=True)
        )
        logits = -distance
        if self.training and sample_codebook_temp > 0:
            logits = logits / sample_codebook_temp + gumbel_noise(logits, generator)
        return logits.argmax(dim=-1)

    def dequantize(self, code_idx: torch.Tensor) -> torch.Tensor:
        """Code ids (any shape) -> vectors (..., C)."""
        return F.embedding(code_idx, self.codebook)

    def get_codebook_entry(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, C, T) vectors."""
        return self.dequantize(indices).permute(0, 2, 1)

    @torch.no_grad()
    def compute_perplexity(self, code_idx: torch.Tensor) -> torch.Tensor:
        """``exp(−Σ p log(p + 1e-7))`` of the code usage in this batch."""
        counts = torch.bincount(code_idx.reshape(-1), minlength=self.nb_code).to(torch.float32)
        prob = counts / counts.sum()
        return torch.exp(-torch.sum(prob * torch.log(prob + 1e-7)))

    @torch.no_grad()
    def update_codebook(
        self, x: torch.Tensor, code_idx: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """EMA update of sums/counts; codes with count < 1 are reset to batch vectors."""
        assert self.code_sum is not None and self.code_count is not None  # set by init
        onehot = torch.zeros(self.nb_code, x.shape[0], device=x.device, dtype=x.dtype)
        onehot.scatter_(0, code_idx.view(1, x.shape[0]), 1)
        code_sum = onehot @ x
        code_count = onehot.sum(dim=-1)
        code_rand = self._tile(x, generator)[: self.nb_code]
        self.code_sum = self.mu * self.code_sum + (1.0 - self.mu) * code_sum
        self.code_count = self.mu * self.code_count + (1.0 - self.mu) * code_count
        usage = (self.code_count.view(self.nb_code, 1) >= 1.0).to(x.dtype)
        code_update = self.code_sum / self.code_count.view(self.nb_code, 1)
        self.codebook = usage * code_update + (1 - usage) * code_rand
        prob = code_count / code_count.sum()
        return torch.exp(-torch.sum(prob * torch.log(prob + 1e-7)))

    def forward(
        self, x: torch.Tensor, return_idx: bool = False, temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Quantise (B, C, T) latents.

        Returns ``(x_d, commit_loss, perplexity)``, or ``(x_d, code_idx (B, T), commit_loss,
        perplexity)`` with ``return_idx``. ``x_d`` (B, C, T) uses the straight-through
        estimator ``x + (code − x).detach()``.
        """
        n, _, t = x.shape
        flat = x.permute(0, 2, 1).reshape(n * t, -1)  # (B, C, T) -> (B*T, C)
        if self.training and not self.init:
            self.init_codebook(flat, generator)
        code_idx = self.quantize(flat, temperature or 0.0, generator)
        x_d = self.dequantize(code_idx)
        if self.training:
            perplexity = self.update_codebook(flat, code_idx, generator)
        else:
            perplexity = self.compute_perplexity(code_idx)
        commit_loss = F.mse_loss(flat, x_d.detach())
        x_d = flat + (x_d - flat).detach()
        x_d = x_d.view(n, t, -1).permute(0, 2, 1).contiguous()  # (B*T, C) -> (B, C, T)
        code_idx = code_idx.view(n, t).contiguous()
        if return_idx:
            return x_d, code_idx, commit_loss, perplexity
        return x_d, commit_loss, perplexity
