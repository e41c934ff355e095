"""HiPPO-LegS matrices and their normal-plus-low-rank (NPLR) form (NEURON_MATH §3.1).

LegS, for ``n, k = 0 .. N-1`` (S4 ``transition('legs')``)::

    A[n, k] = -sqrt(2n+1) sqrt(2k+1)   (n > k)
              -(n+1)                   (n == k)
              0                        (n < k)
    B[n]    = sqrt(2n+1)
    P[n]    = sqrt(n + 1/2)            (rank 1, Q = P)

``A + P P^T = -1/2 I + S`` with ``S`` skew-symmetric, so ``A = V Lambda V^H - P P^T`` with
``V`` unitary and ``Re Lambda = -1/2`` (decision 'Eigenbasis and two discretisations').

The eigenvalues of the real skew-symmetric ``S`` come in conjugate pairs ``±i w``; their
eigenvectors are complex conjugates of each other. A real state ``x`` therefore has
coordinates ``z_full = V^H x`` that are conjugate-symmetric, and only the ``N/2`` modes with
``w > 0`` are stored::

    z = V_half^H x,          x = 2 Re(V_half z)
    P^T x = 2 Re(sum_n conj(P_t[n]) z[n]),   P_t = V_half^H P
    A x   in modes:  Lambda z - P_t * (2 Re(P_t^H z))

:class:`NPLR` holds the half basis and these projected vectors; every structured SA-HiPPO
form in :mod:`golden.sahippo` is built from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["legs_matrices", "NPLR", "nplr"]


def _check_order(n_state: int) -> None:
    if not isinstance(n_state, (int, np.integer)) or n_state < 2 or n_state % 2:
        raise ValueError(f"HiPPO-LegS order N must be an even integer >= 2 (N/2 complex modes), not {n_state!r}")


def legs_matrices(n_state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LegS ``(A, B, P)`` in float64: ``A`` (N, N), ``B`` (N,), ``P`` (N,)."""
    _check_order(n_state)
    q = np.sqrt(2.0 * np.arange(n_state) + 1.0)
    a = -np.tril(np.outer(q, q), -1) - np.diag(np.arange(n_state) + 1.0)
    b = q.copy()
    p = np.sqrt(np.arange(n_state) + 0.5)
    return a, b, p


@dataclass(frozen=True)
class NPLR:
    """The LegS system in the eigenbasis of its normal part, half (conjugate-folded) form.

    Attributes
    ----------
    a, b, p : np.ndarray
        The dense LegS matrices (float64).
    lam : np.ndarray, complex (N/2,)
        Eigenvalues of the normal part with ``Im > 0``, sorted by ``Im``; ``Re = -1/2``.
    v_half : np.ndarray, complex (N, N/2)
        Matching orthonormal eigenvectors.
    b_t, p_t : np.ndarray, complex (N/2,)
        ``V_half^H B`` and ``V_half^H P``.
    """

    a: np.ndarray
    b: np.ndarray
    p: np.ndarray
    lam: np.ndarray
    v_half: np.ndarray
    b_t: np.ndarray
    p_t: np.ndarray

    @property
    def n_state(self) -> int:
        return int(self.a.shape[0])

    @property
    def n_modes(self) -> int:
        return self.n_state // 2

    def to_modes(self, x: np.ndarray) -> np.ndarray:
        """Dense real state(s) ``x`` (..., N) to modes ``z`` (..., N/2)."""
        return np.asarray(x) @ self.v_half.conj()

    def to_dense(self, z: np.ndarray) -> np.ndarray:
        """Modes ``z`` (..., N/2) to the dense real state ``x = 2 Re(V_half z)`` (..., N)."""
        return 2.0 * np.real(np.asarray(z) @ self.v_half.T)

    def output_vector(self, c: np.ndarray) -> np.ndarray:
        """``C_t = C V_half`` so that ``C x = 2 Re(C_t . z)``; ``c`` is (..., N) real."""
        return np.asarray(c) @ self.v_half


@lru_cache(maxsize=None)
def nplr(n_state: int) -> NPLR:
    """Eigendecomposition of the normal part of LegS (as S4's ``nplr``, kept half).

    Raises ``ValueError`` for an odd or too small ``N``. The result is cached; treat its
    arrays as read-only.
    """
    _check_order(n_state)
    a, b, p = legs_matrices(n_state)
    normal = a + np.outer(p, p)
    skew = normal + 0.5 * np.eye(n_state)
    # -i S is Hermitian: S v = i w v with real w and orthonormal v.
    w, v = np.linalg.eigh(-1j * skew)
    keep = w > 0
    if int(keep.sum()) != n_state // 2:
        raise ValueError(f"LegS normal part of order {n_state} has a zero eigenvalue; cannot fold conjugate pairs")
    order = np.argsort(w[keep])
    lam = -0.5 + 1j * w[keep][order]
    v_half = v[:, keep][:, order]
    for arr in (a, b, p, lam, v_half):
        arr.setflags(write=False)
    b_t = v_half.conj().T @ b
    p_t = v_half.conj().T @ p
    b_t.setflags(write=False)
    p_t.setflags(write=False)
    return NPLR(a=a, b=b, p=p, lam=lam, v_half=v_half, b_t=b_t, p_t=p_t)
