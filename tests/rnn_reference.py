"""Plain-NumPy references for the RNN adapters: cells, loops, finite differences, BPTT.

Nothing here calls pcrsolve. The cells are written from their equations (sigmoid as
``1 / (1 + exp(-x))``), one step at a time; derivatives are central finite differences, so
they share nothing with the closed forms under test.
"""

from __future__ import annotations

import functools

import numpy as np

GATES = {
    "elman": ("",),
    "gru": ("_z", "_r", "_c"),
    "gru_diag": ("_z", "_r", "_c"),
    "lstm_diag": ("_f", "_z", "_o"),
}
CELLS = tuple(GATES)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def random_params(rng, cell, w, d_in, scale=0.5, dtype=np.float64):
    """Parameters of a contracting cell (recurrent weights of norm about ``scale``)."""
    p = {}
    for g in GATES[cell]:
        p["U" + g] = rng.standard_normal((w, d_in)) / np.sqrt(d_in)
        p["b" + g] = 0.2 * rng.standard_normal(w)
    if cell == "elman":
        p["W"] = scale * rng.standard_normal((w, w)) / np.sqrt(w)
    elif cell == "gru":
        for g in GATES[cell]:
            p["W" + g] = scale * rng.standard_normal((w, w)) / np.sqrt(w)
    else:
        for g in GATES[cell]:
            p["a" + g] = rng.uniform(-scale, scale, w)
        if cell == "lstm_diag":
            p["p_f"] = rng.uniform(-scale, scale, w)
            p["p_o"] = rng.uniform(-scale, scale, w)
    return {k: v.astype(dtype) for k, v in p.items()}


def state_size(cell, w):
    return 2 * w if cell == "lstm_diag" else w


def step(cell, p, h, x):
    """One step: ``h (..., m)``, ``x (..., d_in)`` -> ``(..., m)`` (broadcast over leading axes)."""

    def lin(W, v):
        return np.einsum("ij,...j->...i", W, v)

    if cell == "elman":
        return np.tanh(lin(p["W"], h) + lin(p["U"], x) + p["b"])
    if cell in ("gru", "gru_diag"):
        if cell == "gru":
            rz, rr, rc = (
                (lambda v: lin(p["W_z"], v)),
                (lambda v: lin(p["W_r"], v)),
                (lambda v: lin(p["W_c"], v)),
            )
        else:
            rz, rr, rc = (lambda v: p["a_z"] * v), (lambda v: p["a_r"] * v), (lambda v: p["a_c"] * v)
        z = sig(rz(h) + lin(p["U_z"], x) + p["b_z"])
        r = sig(rr(h) + lin(p["U_r"], x) + p["b_r"])
        c = np.tanh(rc(r * h) + lin(p["U_c"], x) + p["b_c"])
        return (1 - z) * h + z * c
    w = h.shape[-1] // 2
    c, hh = h[..., :w], h[..., w:]
    f = sig(p["a_f"] * hh + lin(p["U_f"], x) + p["p_f"] * c + p["b_f"])
    z = np.tanh(p["a_z"] * hh + lin(p["U_z"], x) + p["b_z"])
    cn = f * c + (1 - f) * z
    o = sig(p["a_o"] * hh + lin(p["U_o"], x) + p["p_o"] * cn + p["b_o"])
    return np.concatenate([cn, o * np.tanh(cn)], axis=-1)


def loop(cell, p, inputs, h0):
    """All states ``(T, *batch, m)`` by the plain loop."""
    out, h = [], h0
    for t in range(inputs.shape[0]):
        h = step(cell, p, h, inputs[t])
        out.append(h)
    return np.stack(out) if out else np.zeros((0, *h0.shape))


def fd_jacobian(f, x, eps=1e-6):
    """Central differences of ``f: (..., n) -> (..., k)`` in the last axis: ``(..., k, n)``."""
    cols = []
    for j in range(x.shape[-1]):
        e = np.zeros(x.shape[-1])
        e[j] = eps
        cols.append((f(x + e) - f(x - e)) / (2 * eps))
    return np.stack(cols, axis=-1)


def fd_gradients(cell, p, inputs, h0, grad_states, eps=1e-6):
    """``d sum_t <grad_states[t], states[t]> / d everything`` by central differences of the loop."""

    def loss(p_, x_, h_):
        return float(np.sum(grad_states * loop(cell, p_, x_, h_)))

    out = {}
    for name, v in p.items():
        g = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            plus, minus = dict(p), dict(p)
            plus[name], minus[name] = v.copy(), v.copy()
            plus[name][idx] += eps
            minus[name][idx] -= eps
            g[idx] = (loss(plus, inputs, h0) - loss(minus, inputs, h0)) / (2 * eps)
        out[name] = g
    for name, arr in (("inputs", inputs), ("h0", h0)):
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += eps
            minus[idx] -= eps
            if name == "inputs":
                g[idx] = (loss(p, plus, h0) - loss(p, minus, h0)) / (2 * eps)
            else:
                g[idx] = (loss(p, inputs, plus) - loss(p, inputs, minus)) / (2 * eps)
        out[name] = g
    return out


def _with(p, name, theta):
    q = dict(p)
    q[name] = theta.reshape(p[name].shape)
    return q


def bptt(cell, p, inputs, h0, grad_states, eps=1e-6):
    """Back-propagation through time, with every local derivative by central differences.

    ``adj[t] = g[t] + J_{t+1}^T adj[t+1]``; ``dLoss/dθ = sum_t (df_t/dθ)^T adj[t]``; the
    step Jacobians ``J_t``, ``df_t/dθ`` and ``df_t/dx_t`` come from :func:`fd_jacobian`.
    Batch elements are looped over (one state vector at a time).
    """
    states = loop(cell, p, inputs, h0)
    T = inputs.shape[0]
    out = {n: np.zeros_like(v) for n, v in p.items()}
    out["inputs"] = np.zeros_like(inputs)
    out["h0"] = np.zeros_like(h0)
    for bi in np.ndindex(h0.shape[:-1]):
        x = [inputs[t][bi] for t in range(T)]
        prev = [h0[bi]] + [states[t][bi] for t in range(T - 1)]

        def d_state(t, x=x, prev=prev):  # J_t: df_t/dh at prev[t]
            return fd_jacobian(functools.partial(_step_h, cell, p, x[t]), prev[t], eps)

        adj = np.zeros(h0.shape[-1])
        for t in range(T - 1, -1, -1):
            adj = grad_states[t][bi] + (d_state(t + 1).T @ adj if t < T - 1 else 0.0)
            for name, v in p.items():
                f = functools.partial(_step_theta, cell, p, name, prev[t], x[t])
                out[name] += (fd_jacobian(f, v.reshape(-1), eps).T @ adj).reshape(v.shape)
            Jx = fd_jacobian(functools.partial(step, cell, p, prev[t]), x[t], eps)
            out["inputs"][t][bi] = Jx.T @ adj
        out["h0"][bi] = d_state(0).T @ adj
    return out


def _step_h(cell, p, x, h):
    return step(cell, p, h, x)


def _step_theta(cell, p, name, h, x, theta):
    return step(cell, _with(p, name, theta), h, x)
