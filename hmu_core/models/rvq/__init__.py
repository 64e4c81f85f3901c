"""MoMask residual VQ-VAE: conv encoder/decoder, EMA codebooks, residual quantiser."""

from hmu_core.models.rvq.model import RVQVAE, RVQVAEConfig

__all__ = ["RVQVAE", "RVQVAEConfig"]
