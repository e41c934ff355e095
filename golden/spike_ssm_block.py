"""SPikE-SSM block: S4D -> refractory LIF -> 1x1 convolution + GLU (NEURON_MATH §2.1, docs/decisions.md), float.

Per channel ``h`` and mode ``n < N/2`` (S4D-Lin init, SDN ``ss4d.py``)::

    A_hn   = -exp(logA_re) + i A_im          init -1/2 + i pi n
    lam_hn = exp(Delta_h A_hn),  Delta_h = exp(log_dt_h)   init log-uniform [1e-3, 1e-1]
    Bbar   = (lam - 1) / A                   on the input side (decision 'S4D input scale'): states stay ~ |u|
    h_t    = lam h_{t-1} + Bbar u_t,   y_t = 2 Re(sum_n C_hn h_t,n) + D_h u_t

run as an FFT convolution with ``K_l = 2 Re(sum_n C Bbar lam^l)`` (:meth:`S4D.forward`) or as
the recurrence above (:meth:`S4D.recurrence`, what the event-driven SA-HiPPO core computes in
``zoh`` mode with a fixed ``dt`` and the rank-1 term dropped). Then the refractory LIF of
:mod:`golden.refractory_lif` turns ``y`` into spikes, a 1x1 convolution maps ``H`` spike
channels to ``2H`` and a GLU gates them: ``out = (W1 s + c1) * sigmoid(W2 s + c2)``; the block
adds the residual and, as in SDN, applies a LayerNorm over channels (``layer_norm=False``
leaves it out for hardware that has none).

Tensors are ``(batch, time, channels)`` throughout, float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["S4D", "SpikeSSMBlock"]


class S4D(nn.Module):
    """Diagonal S4D layer with ``H`` channels and ``N/2`` complex modes each, input-side ``Bbar``."""

    def __init__(self, n_channels: int, n_state: int = 64, dt_range=(1e-3, 1e-1), seed: int = 0):
        if n_channels < 1 or n_state < 2 or n_state % 2:
            raise ValueError(f"S4D needs n_channels >= 1 and an even n_state >= 2; got {n_channels}, {n_state}")
        if not 0 < dt_range[0] <= dt_range[1]:
            raise ValueError(f"dt_range must satisfy 0 < min <= max, got {dt_range}")
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        m = n_state // 2
        u = torch.rand(n_channels, generator=gen, dtype=torch.float64)
        self.log_dt = nn.Parameter(math.log(dt_range[0]) + u * (math.log(dt_range[1]) - math.log(dt_range[0])))
        self.log_a_re = nn.Parameter(torch.full((n_channels, m), math.log(0.5), dtype=torch.float64))
        self.a_im = nn.Parameter(math.pi * torch.arange(m, dtype=torch.float64).expand(n_channels, -1).clone())
        self.c = nn.Parameter(torch.randn(n_channels, m, 2, generator=gen, dtype=torch.float64) * math.sqrt(0.5))
        self.d = nn.Parameter(torch.randn(n_channels, generator=gen, dtype=torch.float64))

    def discrete(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(lam, Bbar, C)``, each complex (H, N/2)."""
        a = torch.complex(-torch.exp(self.log_a_re), self.a_im)
        lam = torch.exp(a * torch.exp(self.log_dt)[:, None])
        return lam, (lam - 1) / a, torch.view_as_complex(self.c)

    def kernel(self, length: int) -> torch.Tensor:
        """``K`` (H, L) without the ``D`` term."""
        lam, bbar, c = self.discrete()
        powers = torch.exp(torch.log(lam)[..., None] * torch.arange(length, dtype=torch.float64))
        return 2.0 * torch.einsum("hn,hnl->hl", c * bbar, powers).real

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """FFT convolution: ``u`` (B, L, H) -> ``y`` (B, L, H)."""
        u = u.to(torch.float64).transpose(1, 2)
        length = u.shape[-1]
        n_fft = 2 * length
        y = torch.fft.irfft(torch.fft.rfft(u, n_fft) * torch.fft.rfft(self.kernel(length), n_fft), n_fft)[..., :length]
        return (y + self.d[:, None] * u).transpose(1, 2)

    def recurrence(self, u: torch.Tensor) -> torch.Tensor:
        """The same map step by step (what a streaming core computes): ``u`` (B, L, H) -> ``y``."""
        lam, bbar, c = self.discrete()
        u = u.to(torch.float64)
        h = torch.zeros(u.shape[0], *lam.shape, dtype=torch.complex128)
        out = []
        for t in range(u.shape[1]):
            h = lam * h + bbar * u[:, t, :, None]
            out.append(2.0 * (c * h).sum(-1).real + self.d * u[:, t])
        return torch.stack(out, 1)


class SpikeSSMBlock(nn.Module):
    """``x + GLU(conv1x1(LIF(S4D(x))))``, then LayerNorm (optional), on ``(B, L, H)``.

    Parameters
    ----------
    n_channels : int
        ``H``.
    n_state : int
        S4D order ``N`` (``N/2`` complex modes per channel).
    neuron : nn.Module, optional
        Maps ``(B, L, H)`` currents to spikes; defaults to
        :class:`golden.refractory_lif.RefractoryLIF` with ``H`` neurons (decision 'Refractory LIF equations').
    layer_norm : bool
        Apply SDN's post-norm ``LayerNorm(H)``.
    """

    def __init__(self, n_channels: int, n_state: int = 64, neuron: nn.Module | None = None, layer_norm: bool = True, seed: int = 0):
        super().__init__()
        self.s4d = S4D(n_channels, n_state, seed=seed)
        if neuron is None:
            from .refractory_lif import RefractoryLIF

            neuron = RefractoryLIF(n_channels)
        self.neuron = neuron.to(torch.float64)
        self.conv = nn.Conv1d(n_channels, 2 * n_channels, kernel_size=1, dtype=torch.float64)
        self.norm = nn.LayerNorm(n_channels, dtype=torch.float64) if layer_norm else nn.Identity()

    def forward(self, x: torch.Tensor, recurrent: bool = False) -> torch.Tensor:
        """``x`` (B, L, H) -> (B, L, H). ``recurrent=True`` runs the S4D step by step."""
        x = x.to(torch.float64)
        y = self.s4d.recurrence(x) if recurrent else self.s4d(x)
        spikes = self.neuron(y)
        gated = nn.functional.glu(self.conv(spikes.transpose(1, 2)), dim=1).transpose(1, 2)
        return self.norm(x + gated)
