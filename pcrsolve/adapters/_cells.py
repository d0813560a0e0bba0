"""The recurrent cells of :class:`~pcrsolve.adapters.RNN`, on any array namespace.

A cell is one definition from which its step, its Jacobians (dense, diagonal, blocks), its
Jacobian-vector product and its backward pass all follow, in closed form. Every function
works on arrays with any leading axes (here ``(s, B)``; tangents may add one, broadcast
against the gates): states ``x (s, B, m)``, input projections ``P (s, B, G, w)``
(``U_g x_t + b_g`` for the cell's ``G`` gates, computed for all steps in one product by the
adapter), parameters in a dict. ``s(.)`` is the logistic sigmoid, computed as
``(1 + tanh(x/2)) / 2`` (one transcendental, exact in absolute terms, never overflows).

========== ============== ===== ============================================================
cell       state          G     recurrent parameters
========== ============== ===== ============================================================
elman      h (w)          1     ``W (w, w)``
gru        h (w)          3     ``W_z, W_r, W_c (w, w)``
gru_diag   h (w)          3     ``a_z, a_r, a_c (w,)``
lstm_diag  [c; h] (2w)    3     ``a_f, a_z, a_o, p_f, p_o (w,)``
========== ============== ===== ============================================================

Every cell also has ``U_g (w, d_in)`` and ``b_g (w,)`` per gate (``U``, ``b`` for elman).
``forward`` keeps the intermediate values the other functions need (one evaluation serves
the step and its derivatives); ``backward`` returns ``J^T u`` and the gate deltas
``dLoss/d(pre-activation)`` from which all parameter gradients are products
(:func:`recurrent_grads` for the recurrent ones; the adapter does ``U`` and ``b``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CELLS", "Cell", "sigmoid"]


def sigmoid(xp: Any, x: Any) -> Any:
    """The logistic function as ``(1 + tanh(x/2)) / 2``."""
    return 0.5 * xp.tanh(0.5 * x) + 0.5


def _mT(xp, a):
    return xp.matrix_transpose(a)


def _sum_rows(xp, a, b=None):
    """``sum a`` over all axes but the last (``(..., w) -> (w,)``), or of ``a * b``."""
    a = a if b is None else a * b
    return xp.sum(xp.reshape(a, (-1, a.shape[-1])), axis=0)


def _outer_sum(xp, a, b):
    """``sum_{s,B} a b^T``: ``(s, B, w), (s, B, v) -> (w, v)``, one matrix product."""
    w, v = a.shape[-1], b.shape[-1]
    return xp.matmul(_mT(xp, xp.reshape(a, (-1, w))), xp.reshape(b, (-1, v)))


def _embed_diag(xp, d):
    """``(s, B, m)`` diagonals -> dense ``(s, B, m, m)`` matrices."""
    m = d.shape[-1]
    return d[..., None] * xp.eye(m, dtype=d.dtype)


@dataclass(frozen=True)
class Cell:
    """A cell's static description: names, sizes and its Jacobian structure.

    Attributes
    ----------
    name : str
    gates : tuple of str
        Suffixes of the input-projected gates (``U{g}``, ``b{g}``), in the order of ``P``.
    recurrent : tuple of str
        Names of the recurrent parameters.
    dense_recurrent : bool
        Whether the recurrent parameters are ``(w, w)`` matrices (else ``(w,)`` vectors).
    parts : int
        The state is ``parts`` stacked vectors of width ``w``.
    block : int or None
        The Jacobian's block size (``jac_blocks``): 1 (diagonal), 2, or None (dense: ``m``).
    method : str
        The ``solve_chain`` method that is exact Newton for this cell.
    """

    name: str
    gates: tuple[str, ...]
    recurrent: tuple[str, ...]
    dense_recurrent: bool
    parts: int
    block: int | None
    method: str

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the input weights ``U{g}``."""
        return tuple(f"U{g}" for g in self.gates)

    @property
    def bias_names(self) -> tuple[str, ...]:
        """Names of the biases ``b{g}``."""
        return tuple(f"b{g}" for g in self.gates)

    @property
    def names(self) -> tuple[str, ...]:
        """All parameter names, in the order of the gradients' dict."""
        return (*self.recurrent, *self.input_names, *self.bias_names)

    # -------------------------------------------------------------- evaluation

    def forward(self, xp: Any, prm: dict[str, Any], x: Any, P: Any) -> dict[str, Any]:
        """Intermediate values of one evaluation at states ``x (s, B, m)``."""
        return _FORWARD[self.name](xp, prm, x, P)

    def value(self, xp: Any, g: dict[str, Any]) -> Any:
        """The new states ``(s, B, m)``."""
        if self.name == "lstm_diag":
            return xp.concat([g["cn"], g["hn"]], axis=-1)
        return g["y"]

    def jac_diag(self, xp: Any, prm: dict[str, Any], g: dict[str, Any]) -> Any:
        """The Jacobians' diagonals ``(s, B, m)``."""
        return _DIAG[self.name](xp, prm, g)

    def jac_blocks(self, xp: Any, prm: dict[str, Any], g: dict[str, Any]) -> Any:
        """Block-diagonal Jacobians ``(s, B, m/b, b, b)`` (one ``m x m`` block if dense)."""
        if self.name == "lstm_diag":
            Jcc, Jch, Jhc, Jhh = _lstm_blocks(prm, g)
            row_c = xp.stack([Jcc, Jch], axis=-1)
            row_h = xp.stack([Jhc, Jhh], axis=-1)
            return xp.stack([row_c, row_h], axis=-2)
        if self.block == 1:
            return self.jac_diag(xp, prm, g)[..., None, None]
        return self.jac(xp, prm, g)[..., None, :, :]

    def jac(self, xp: Any, prm: dict[str, Any], g: dict[str, Any]) -> Any:
        """Dense Jacobians ``(s, B, m, m)``."""
        if self.name == "elman":
            return g["d"][..., None] * prm["W"]
        if self.name == "gru":
            return _gru_dense(xp, prm, g)
        if self.name == "gru_diag":
            return _embed_diag(xp, self.jac_diag(xp, prm, g))
        Jcc, Jch, Jhc, Jhh = (_embed_diag(xp, a) for a in _lstm_blocks(prm, g))
        top = xp.concat([Jcc, Jch], axis=-1)
        return xp.concat([top, xp.concat([Jhc, Jhh], axis=-1)], axis=-2)

    def jvp(self, xp: Any, prm: dict[str, Any], g: dict[str, Any], v: Any, dP: Any = None) -> Any:
        """``J v`` (plus the response to a change ``dP (s, B, G, w)`` of the projections)."""
        return _JVP[self.name](xp, prm, g, v, dP)

    def backward(self, xp: Any, prm: dict[str, Any], g: dict[str, Any], u: Any) -> tuple[Any, Any]:
        """``(J^T u (s, B, m), deltas (s, B, G, w))`` for the cotangent ``u`` of the new states."""
        return _BACKWARD[self.name](xp, prm, g, u)

    def recurrent_grads(self, xp: Any, g: dict[str, Any], deltas: Any) -> dict[str, Any]:
        """Gradients of the recurrent parameters, summed over steps and batch."""
        dl = [deltas[..., i, :] for i in range(len(self.gates))]
        h = g["h"]
        if self.name == "elman":
            return {"W": _outer_sum(xp, dl[0], h)}
        if self.name == "gru":
            return {
                "W_z": _outer_sum(xp, dl[0], h),
                "W_r": _outer_sum(xp, dl[1], h),
                "W_c": _outer_sum(xp, dl[2], g["rh"]),
            }
        if self.name == "gru_diag":
            return {
                "a_z": _sum_rows(xp, dl[0], h),
                "a_r": _sum_rows(xp, dl[1], h),
                "a_c": _sum_rows(xp, dl[2], g["rh"]),
            }
        return {
            "a_f": _sum_rows(xp, dl[0], h),
            "a_z": _sum_rows(xp, dl[1], h),
            "a_o": _sum_rows(xp, dl[2], h),
            "p_f": _sum_rows(xp, dl[0], g["c"]),
            "p_o": _sum_rows(xp, dl[2], g["cn"]),
        }


# ------------------------------------------------------------------ elman


def _elman_forward(xp, prm, x, P):
    y = xp.tanh(xp.matmul(x, _mT(xp, prm["W"])) + P[..., 0, :])
    return {"h": x, "y": y, "d": 1.0 - y * y}


def _elman_diag(xp, prm, g):
    W = prm["W"]
    w = W.shape[-1]
    return g["d"] * xp.reshape(W, (w * w,))[:: w + 1]


def _elman_jvp(xp, prm, g, v, dP):
    pre = xp.matmul(v, _mT(xp, prm["W"]))
    if dP is not None:
        pre = pre + dP[..., 0, :]
    return g["d"] * pre


def _elman_backward(xp, prm, g, u):
    delta = u * g["d"]
    return xp.matmul(delta, prm["W"]), delta[..., None, :]


# ------------------------------------------------------------------ GRU (dense and diagonal)


def _gru_forward(xp, prm, x, P):
    w = x.shape[-1]
    if "W_z" in prm:
        zr = xp.matmul(x, _mT(xp, prm["W_zr"]))
        z = sigmoid(xp, zr[..., :w] + P[..., 0, :])
        r = sigmoid(xp, zr[..., w:] + P[..., 1, :])
        rh = r * x
        c = xp.tanh(xp.matmul(rh, _mT(xp, prm["W_c"])) + P[..., 2, :])
    else:
        z = sigmoid(xp, prm["a_z"] * x + P[..., 0, :])
        r = sigmoid(xp, prm["a_r"] * x + P[..., 1, :])
        rh = r * x
        c = xp.tanh(prm["a_c"] * rh + P[..., 2, :])
    # The derivative factors every derivative uses.
    dz = (c - x) * (z * (1.0 - z))  # d h' / d z-pre-activation
    dc = z * (1.0 - c * c)  # d h' / d c-pre-activation
    dr = r * (1.0 - r)
    return {"h": x, "z": z, "r": r, "rh": rh, "c": c, "y": x + z * (c - x), "dz": dz, "dc": dc, "dr": dr}


def _gru_diag_diag(xp, prm, g):
    return (
        (1.0 - g["z"])
        + g["dz"] * prm["a_z"]
        + g["dc"] * prm["a_c"] * (g["r"] + g["h"] * g["dr"] * prm["a_r"])
    )


def _gru_dense_diag(xp, prm, g):
    w = g["h"].shape[-1]

    def dg(W):
        return xp.reshape(W, (w * w,))[:: w + 1]

    # diag(W_c diag(h dr) W_r)_i = sum_j W_c[i, j] (h dr)_j W_r[j, i]
    cross = xp.matmul(g["h"] * g["dr"], prm["W_r"] * _mT(xp, prm["W_c"]))
    return (1.0 - g["z"]) + g["dz"] * dg(prm["W_z"]) + g["dc"] * (dg(prm["W_c"]) * g["r"] + cross)


def _gru_dense(xp, prm, g):
    """``diag(1-z) + diag(dz) W_z + diag(dc) W_c (diag(r) + diag(h dr) W_r)``: O(w^3) per row."""
    W_c = prm["W_c"]
    inner = W_c * g["r"][..., None, :] + xp.matmul(W_c * (g["h"] * g["dr"])[..., None, :], prm["W_r"])
    J = g["dz"][..., None] * prm["W_z"] + g["dc"][..., None] * inner
    return J + _embed_diag(xp, 1.0 - g["z"])


def _gru_jvp(xp, prm, g, v, dP):
    dense = "W_z" in prm
    w = v.shape[-1]
    if dense:
        zr = xp.matmul(v, _mT(xp, prm["W_zr"]))
        pz, pr = zr[..., :w], zr[..., w:]
    else:
        pz, pr = prm["a_z"] * v, prm["a_r"] * v
    if dP is not None:
        pz, pr = pz + dP[..., 0, :], pr + dP[..., 1, :]
    drh = g["dr"] * pr * g["h"] + g["r"] * v
    pc = xp.matmul(drh, _mT(xp, prm["W_c"])) if dense else prm["a_c"] * drh
    if dP is not None:
        pc = pc + dP[..., 2, :]
    return (1.0 - g["z"]) * v + g["dz"] * pz + g["dc"] * pc


def _gru_backward(xp, prm, g, u):
    dense = "W_z" in prm
    d_z = u * g["dz"]
    d_c = u * g["dc"]
    g_rh = xp.matmul(d_c, prm["W_c"]) if dense else prm["a_c"] * d_c
    d_r = g_rh * g["h"] * g["dr"]
    out = u * (1.0 - g["z"]) + g_rh * g["r"]
    if dense:
        out = out + xp.matmul(xp.concat([d_z, d_r], axis=-1), prm["W_zr"])
    else:
        out = out + prm["a_z"] * d_z + prm["a_r"] * d_r
    return out, xp.stack([d_z, d_r, d_c], axis=-2)


# ------------------------------------------------------------------ LSTM (CIFG, peepholes, diagonal)


def _lstm_forward(xp, prm, x, P):
    w = x.shape[-1] // 2
    c, h = x[..., :w], x[..., w:]
    f = sigmoid(xp, prm["a_f"] * h + prm["p_f"] * c + P[..., 0, :])
    z = xp.tanh(prm["a_z"] * h + P[..., 1, :])
    cn = z + f * (c - z)
    o = sigmoid(xp, prm["a_o"] * h + prm["p_o"] * cn + P[..., 2, :])
    q = xp.tanh(cn)
    return {
        "c": c,
        "h": h,
        "f": f,
        "z": z,
        "cn": cn,
        "o": o,
        "q": q,
        "hn": o * q,
        "df": (c - z) * (f * (1.0 - f)),  # d c' / d f-pre-activation
        "dzz": (1.0 - f) * (1.0 - z * z),  # d c' / d z-pre-activation
        "do": q * (o * (1.0 - o)),  # d h' / d o-pre-activation
        "dq": o * (1.0 - q * q),  # d h' / d c' through tanh
    }


def _lstm_blocks(prm, g):
    """The four diagonals ``(J_cc, J_ch, J_hc, J_hh)``, each ``(s, B, w)``."""
    Jcc = g["f"] + g["df"] * prm["p_f"]
    Jch = g["df"] * prm["a_f"] + g["dzz"] * prm["a_z"]
    gc = g["do"] * prm["p_o"] + g["dq"]  # d h' / d c' in total (through o and tanh)
    return Jcc, Jch, gc * Jcc, g["do"] * prm["a_o"] + gc * Jch


def _lstm_diag(xp, prm, g):
    Jcc, _, _, Jhh = _lstm_blocks(prm, g)
    return xp.concat([Jcc, Jhh], axis=-1)


def _lstm_jvp(xp, prm, g, v, dP):
    w = v.shape[-1] // 2
    vc, vh = v[..., :w], v[..., w:]
    pf = prm["a_f"] * vh + prm["p_f"] * vc
    pz = prm["a_z"] * vh
    if dP is not None:
        pf, pz = pf + dP[..., 0, :], pz + dP[..., 1, :]
    dcn = g["f"] * vc + g["df"] * pf + g["dzz"] * pz
    po = prm["a_o"] * vh + prm["p_o"] * dcn
    if dP is not None:
        po = po + dP[..., 2, :]
    return xp.concat([dcn, g["do"] * po + g["dq"] * dcn], axis=-1)


def _lstm_backward(xp, prm, g, u):
    w = u.shape[-1] // 2
    uc, uh = u[..., :w], u[..., w:]
    d_o = uh * g["do"]
    g_cn = uc + uh * g["dq"] + d_o * prm["p_o"]
    d_f = g_cn * g["df"]
    d_z = g_cn * g["dzz"]
    out_c = g_cn * g["f"] + d_f * prm["p_f"]
    out_h = d_f * prm["a_f"] + d_z * prm["a_z"] + d_o * prm["a_o"]
    return xp.concat([out_c, out_h], axis=-1), xp.stack([d_f, d_z, d_o], axis=-2)


# ------------------------------------------------------------------ tables

_FORWARD = {
    "elman": _elman_forward,
    "gru": _gru_forward,
    "gru_diag": _gru_forward,
    "lstm_diag": _lstm_forward,
}
_DIAG = {"elman": _elman_diag, "gru": _gru_dense_diag, "gru_diag": _gru_diag_diag, "lstm_diag": _lstm_diag}
_JVP = {"elman": _elman_jvp, "gru": _gru_jvp, "gru_diag": _gru_jvp, "lstm_diag": _lstm_jvp}
_BACKWARD = {
    "elman": _elman_backward,
    "gru": _gru_backward,
    "gru_diag": _gru_backward,
    "lstm_diag": _lstm_backward,
}

#: The cells by name.
CELLS: dict[str, Cell] = {
    "elman": Cell("elman", ("",), ("W",), True, 1, None, "newton"),
    "gru": Cell("gru", ("_z", "_r", "_c"), ("W_z", "W_r", "W_c"), True, 1, None, "newton"),
    "gru_diag": Cell("gru_diag", ("_z", "_r", "_c"), ("a_z", "a_r", "a_c"), False, 1, 1, "diagonal"),
    "lstm_diag": Cell(
        "lstm_diag", ("_f", "_z", "_o"), ("a_f", "a_z", "a_o", "p_f", "p_o"), False, 2, 2, "block"
    ),
}
