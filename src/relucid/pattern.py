"""Activation patterns and the affine map a pattern fixes.

A pattern is a boolean array over the hidden neurons in layer order (``True`` = active,
``z > 0``). On the set of inputs that have pattern ``p``, every hidden pre-activation and the
logits are affine in the input (paper: geometric-causal-explanations-relu, section I-C):

    z_k = M_k x + c_k,    logits = L x + d,

obtained by composing the layers with ``diag(p_k)`` standing for the ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import InputError
from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class LocalAffine:
    """The affine maps that hold wherever the input has pattern ``pattern``.

    Attributes
    ----------
    pattern : bool array (N,)
    M, c : arrays (N, n) and (N,)
        Hidden pre-activations ``z = M x + c``, all layers stacked in flat neuron order.
    L, d : arrays (m, n) and (m,)
        Logits ``y = L x + d``.
    """

    pattern: BoolArray
    M: FloatArray
    c: FloatArray
    L: FloatArray
    d: FloatArray

    def logits(self, x: ArrayLike) -> FloatArray:
        return np.asarray(x, dtype=np.float64) @ self.L.T + self.d

    def pre_activations(self, x: ArrayLike) -> FloatArray:
        return np.asarray(x, dtype=np.float64) @ self.M.T + self.c


def check_pattern(net: ReluNetwork, pattern: ArrayLike) -> BoolArray:
    """``pattern`` as a bool array of length ``net.num_hidden``, or :class:`InputError`."""
    p = np.asarray(pattern)
    if p.shape != (net.num_hidden,):
        raise InputError(
            f"pattern has shape {p.shape}; {net!r} has {net.num_hidden} hidden neurons"
        )
    if p.dtype != np.bool_:
        if not np.isin(p, (0, 1)).all():
            raise InputError("a pattern holds only 0/1 or booleans")
        p = p.astype(bool)
    return p


def local_affine(net: ReluNetwork, pattern: ArrayLike) -> LocalAffine:
    """Compose the network with the ReLUs replaced by the masks of ``pattern``."""
    p = check_pattern(net, pattern)
    offs = net.layer_offsets
    n = net.input_dim
    ms: list[FloatArray] = []
    cs: list[FloatArray] = []
    # (G, g): the current layer's *post*-activation as an affine map of x.
    g_mat = np.eye(n)
    g_vec = np.zeros(n)
    for k, (w, b) in enumerate(zip(net.weights[:-1], net.biases[:-1], strict=True)):
        m_k = w @ g_mat
        c_k = w @ g_vec + b
        ms.append(m_k)
        cs.append(c_k)
        mask = p[offs[k] : offs[k + 1]]
        g_mat = m_k * mask[:, None]
        g_vec = c_k * mask
    big_l = net.weights[-1] @ g_mat
    small_d = net.weights[-1] @ g_vec + net.biases[-1]
    m_all = np.concatenate(ms, axis=0) if ms else np.zeros((0, n))
    c_all = np.concatenate(cs) if cs else np.zeros(0)
    return LocalAffine(p, m_all, c_all, big_l, small_d)
