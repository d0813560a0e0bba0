"""Numba kernels for forward linear recurrences ``x_k = A_k x_{k-1} + b_k``, ``x_{-1} = x0``.

See :mod:`pcrsolve.kernels` for the contract. Dense: ``A: (B, n, m, m)``; diagonal:
``A: (B, n, m)`` (elementwise products); the ``sequential`` kernels also take a time-invariant
``A`` with a sequence axis of length 1; ``b, x: (B, n, m)``; ``x0: (B, m)``. The entry points
return ``x`` only: a recurrence has no pivots, so nothing can break down.

Methods
    ``sequential``  the loop; parallel over the batch (the diagonal case: over the ``B*m``
                    independent scalar chains, four per task walked in lockstep).
    ``pcr``         Hillis-Steele scan of the affine maps ``f_k = (A_k, b_k)``: at stride
                    ``s = 1, 2, 4, ...`` every ``k >= s`` composes ``f_k o f_{k-s}``;
                    ceil(log2 n) levels, double-buffered, parallel over all rows of a level.
                    ``x0`` is folded into ``f_0`` first, so maps that already reach back to
                    the start only need their offset (their ``A`` products are skipped).
                    Work O(n log n m^3) dense, O(n log n m) diagonal.
    ``hybrid``      chunked three-phase scan: compose each chunk's maps (parallel over
                    batch x chunks), scan the chunk carries sequentially, re-run every chunk
                    from its true start state (parallel). Work about 2.5x the loop in the
                    diagonal case; for dense blocks a composition costs O(m^3) per row
                    against the loop's O(m^2), so it pays only with more cores than ~m.

Diagonal kernels walk four independent scalar chains in lockstep with their states in
registers: a single chain is bound by the latency of one multiply-add per step, four
overlap. Layout inside the kernels: batch and sequence axes are flattened (dense
``(B*n, m, m)`` and ``(B*n, m)``; diagonal: 1-D, element ``(b, k, j)`` at ``(b*n + k)*m + j``).
"""

from __future__ import annotations

import numpy as np

from ..._jit import jit, prange
from .block import _pick, _twins

__all__ = [
    "dense_hybrid",
    "dense_pcr",
    "dense_sequential",
    "diag_hybrid",
    "diag_pcr",
    "diag_sequential",
]


def _flat(a):
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))


def _threads() -> int:
    import numba

    return max(1, int(numba.get_num_threads()))


def _levels(n: int) -> int:
    return max(1, (n - 1).bit_length())


@jit
def _chunk_bounds(c, n, p):
    """Rows ``[start, stop)`` (sequence-local) of chunk ``c`` of ``p`` nearly equal chunks."""
    base = n // p
    rem = n - base * p
    start = c * base + min(c, rem)
    return start, start + base + (1 if c < rem else 0)


# --------------------------------------------------------------------------------------------
# Dense blocks
# --------------------------------------------------------------------------------------------


@jit
def _affine(x, i, A, ia, v, iv, b, ib):
    """``x[i] = A[ia] @ v[iv] + b[ib]`` (``x[i]`` must not alias ``v[iv]``)."""
    m = x.shape[1]
    for p in range(m):
        acc = A[ia, p, 0] * v[iv, 0]
        for q in range(1, m):
            acc += A[ia, p, q] * v[iv, q]
        x[i, p] = acc + b[ib, p]


@jit
def _matmul(C, ic, A, ia, Bm, ib):
    """``C[ic] = A[ia] @ Bm[ib]`` (``C[ic]`` must not alias the operands)."""
    m = C.shape[1]
    for i in range(m):
        for j in range(m):
            C[ic, i, j] = 0
        for k in range(m):
            a = A[ia, i, k]
            for j in range(m):
                C[ic, i, j] += a * Bm[ib, k, j]


@jit
def _dense_run(A, ia, da, b, v, iv, s, e, x):
    """Rows ``s .. e-1`` of ``x`` from the state ``v[iv]`` before row ``s``; row ``s + j``
    uses the matrix ``A[ia + j*da]`` (``da = 0``: one matrix for every row)."""
    if e > s:
        _affine(x, s, A, ia, v, iv, b, s)
    for i in range(s + 1, e):
        _affine(x, i, A, ia + (i - s) * da, x, i - 1, b, i)


def _dense_sequential_kernel(A, b, x0, n, na, x):
    # na: A's rows per sequence, n (time-varying) or 1 (time-invariant)
    da = 1 if na == n else 0
    for bb in prange(x0.shape[0]):
        _dense_run(A, bb * na, da, b, x0, bb, bb * n, bb * n + n, x)


_DENSE_SEQUENTIAL = _twins(_dense_sequential_kernel)


def dense_sequential(A, b, x0):
    """The loop ``x_k = A_k x_{k-1} + b_k``, one sequence per thread.

    ``A`` may be time-invariant, ``(B, 1, m, m)`` (``dense_sequential.invariant_A``): the one
    matrix is read in place instead of being repeated along the sequence.
    """
    nb, n, m = b.shape
    x = np.empty(b.shape, dtype=b.dtype)
    if x.size:
        kernel = _pick(_DENSE_SEQUENTIAL, nb, 2 * nb * n * m * m)
        kernel(_flat(A), _flat(b), x0, n, A.shape[1], _flat(x))
    return x


dense_sequential.invariant_A = True


@jit
def _dense_scan_row(As, bs, Ad, bd, i, j, s):
    """Row ``i`` (row ``j`` of its sequence) of a scan level at stride ``s``."""
    if j < s:
        for p in range(bd.shape[1]):
            bd[i, p] = bs[i, p]
    else:
        _affine(bd, i, As, i, bs, i - s, bs, i)
        if j >= 2 * s:  # its map does not reach back to the start yet: compose A too
            _matmul(Ad, i, As, i, As, i - s)


def _dense_pcr_kernel(A, b, x0, n, A1, A2, b1, b2):
    rows = b.shape[0]
    # Fold x0 into the first map: f_0 becomes the constant A_0 x0 + b_0.
    for i in prange(rows):
        if i % n == 0:
            _affine(b1, i, A, i, x0, i // n, b, i)
        else:
            for p in range(b.shape[1]):
                b1[i, p] = b[i, p]
    if n <= 1:
        return b1
    for i in prange(rows):
        _dense_scan_row(A, b1, A1, b2, i, i % n, 1)
    s = 2
    while s < n:
        for i in prange(rows):
            _dense_scan_row(A1, b2, A2, b1, i, i % n, s)
        A1, A2 = A2, A1
        b1, b2 = b2, b1
        s *= 2
    return b2


_DENSE_PCR = _twins(_dense_pcr_kernel)


def dense_pcr(A, b, x0):
    """Hillis-Steele scan of the affine maps ``(A_k, b_k)``; ceil(log2 n) levels."""
    nb, n, m = b.shape
    if nb * n * m == 0:
        return np.empty(b.shape, dtype=b.dtype)
    Af, bf = _flat(A), _flat(b)
    # Level s writes A products only for rows j >= 2s: A1 from n > 2 on, A2 from n > 4 on.
    A1 = np.empty(Af.shape if n > 2 else (1, m, m), dtype=A.dtype)
    A2 = np.empty(Af.shape if n > 4 else (1, m, m), dtype=A.dtype)
    b1, b2 = np.empty_like(bf), np.empty_like(bf)
    kernel = _pick(_DENSE_PCR, nb * n, 2 * nb * n * _levels(n) * m**3)
    return kernel(Af, bf, x0, n, A1, A2, b1, b2).reshape(b.shape)


def _dense_hybrid_kernel(A, b, x0, n, p, P, q, carry, x):
    nb = x0.shape[0]
    m = x0.shape[1]
    # 1. Chunk 0 runs from x0; every other chunk composes its maps into (P, q).
    for t in prange(nb * p):
        bb = t // p
        c = t - bb * p
        s, e = _chunk_bounds(c, n, p)
        s += bb * n
        e += bb * n
        if c == 0:
            _dense_run(A, s, 1, b, x0, bb, s, e, x)
        else:
            T = np.empty((1, m, m), dtype=P.dtype)
            u = np.empty((1, m), dtype=P.dtype)
            for i in range(m):
                q[t, i] = b[s, i]
                for j in range(m):
                    P[t, i, j] = A[s, i, j]
            for k in range(s + 1, e):
                _matmul(T, 0, A, k, P, t)
                _affine(u, 0, A, k, q, t, b, k)
                for i in range(m):
                    q[t, i] = u[0, i]
                    for j in range(m):
                        P[t, i, j] = T[0, i, j]
    # 2. Carries: the state before each chunk, sequentially over the chunks.
    for bb in prange(nb):
        if p > 1:
            s, e = _chunk_bounds(0, n, p)
            for i in range(m):
                carry[bb * p + 1, i] = x[bb * n + e - 1, i]
        for c in range(2, p):
            t = bb * p + c
            _affine(carry, t, P, t - 1, carry, t - 1, q, t - 1)
    # 3. Chunks 1.. re-run from their true start states.
    for t in prange(nb * p):
        bb = t // p
        c = t - bb * p
        if c > 0:
            s, e = _chunk_bounds(c, n, p)
            _dense_run(A, bb * n + s, 1, b, carry, t, bb * n + s, bb * n + e, x)


_DENSE_HYBRID = _twins(_dense_hybrid_kernel)


def dense_hybrid(A, b, x0, *, chunks=None):
    """Chunked three-phase scan (compose chunks in parallel, scan carries, re-run chunks).

    ``chunks`` is the number of chunks per sequence. Composing a chunk costs O(m^3) per row
    against the loop's O(m^2), so the default chunks only when there are more threads than
    ``m + 2`` per sequence (about two chunks per thread, at least 64 rows each); otherwise it
    is one chunk, the loop itself.
    """
    nb, n, m = b.shape
    if nb * n * m == 0:
        return np.empty(b.shape, dtype=b.dtype)
    if chunks is None:
        threads = _threads()
        chunks = min(-(-2 * threads // nb), n // 64) if threads > nb * (m + 2) else 1
    p = max(1, min(int(chunks), n))
    x = np.empty(b.shape, dtype=b.dtype)
    P = np.empty((nb * p, m, m), dtype=b.dtype)
    q = np.empty((nb * p, m), dtype=b.dtype)
    carry = np.empty((nb * p, m), dtype=b.dtype)
    kernel = _pick(_DENSE_HYBRID, nb * p, 2 * nb * n * (m + 2) * m * m)
    kernel(_flat(A), _flat(b), x0, n, p, P, q, carry, _flat(x))
    return x


# --------------------------------------------------------------------------------------------
# Diagonal A (elementwise): scalar chains, four per task in lockstep
# --------------------------------------------------------------------------------------------


@jit
def _run4(A, b, x, o0, o1, o2, o3, stride, length, s0, s1, s2, s3):
    """Four chains ``x[o + k*stride] = A[..] * state + b[..]``, ``k < length``, from the
    states ``s0..s3``; returns the final states. Equal offsets are allowed (same values)."""
    for k in range(length):
        d = k * stride
        s0 = A[o0 + d] * s0 + b[o0 + d]
        s1 = A[o1 + d] * s1 + b[o1 + d]
        s2 = A[o2 + d] * s2 + b[o2 + d]
        s3 = A[o3 + d] * s3 + b[o3 + d]
        x[o0 + d] = s0
        x[o1 + d] = s1
        x[o2 + d] = s2
        x[o3 + d] = s3
    return s0, s1, s2, s3


@jit
def _run1(A, b, x, o, stride, k0, k1, s):
    for k in range(k0, k1):
        d = o + k * stride
        s = A[d] * s + b[d]
        x[d] = s
    return s


@jit
def _compose4(A, b, o0, o1, o2, o3, stride, length, P0, P1, P2, P3, q0, q1, q2, q3):
    """Extend the maps ``(P, q)`` of four chains by ``length`` steps: ``P *= a``,
    ``q = a q + b``."""
    for k in range(length):
        d = k * stride
        a0 = A[o0 + d]
        a1 = A[o1 + d]
        a2 = A[o2 + d]
        a3 = A[o3 + d]
        P0 *= a0
        P1 *= a1
        P2 *= a2
        P3 *= a3
        q0 = a0 * q0 + b[o0 + d]
        q1 = a1 * q1 + b[o1 + d]
        q2 = a2 * q2 + b[o2 + d]
        q3 = a3 * q3 + b[o3 + d]
    return P0, P1, P2, P3, q0, q1, q2, q3


@jit
def _compose1(A, b, o, stride, k0, k1, P, q):
    for k in range(k0, k1):
        d = o + k * stride
        a = A[d]
        P *= a
        q = a * q + b[d]
    return P, q


@jit
def _lanes(t, per, total):
    """The four chain ids of task ``t`` (``per`` chains each, the last repeated to fill)."""
    c0 = t * per
    last = min(total, c0 + per) - 1
    return c0, min(c0 + 1, last), min(c0 + 2, last), min(c0 + 3, last)


@jit
def _run4_invariant(a0, a1, a2, a3, b, x, o0, o1, o2, o3, stride, length, s0, s1, s2, s3):
    """:func:`_run4` with one coefficient per chain (``a0..a3``), kept in registers (the
    compiler cannot hoist loads of ``A`` out of :func:`_run4`: ``x`` might alias it)."""
    for k in range(length):
        d = k * stride
        s0 = a0 * s0 + b[o0 + d]
        s1 = a1 * s1 + b[o1 + d]
        s2 = a2 * s2 + b[o2 + d]
        s3 = a3 * s3 + b[o3 + d]
        x[o0 + d] = s0
        x[o1 + d] = s1
        x[o2 + d] = s2
        x[o3 + d] = s3
    return s0, s1, s2, s3


def _diag_sequential_kernel(A, b, x0, n, m, na, per, x):
    chains = x0.shape[0]  # x0 is flat: one start state per chain
    for t in prange(-(-chains // per)):
        h0, h1, h2, h3 = _lanes(t, per, chains)
        # chain h = bb*m + j starts at offset bb*n*m + j, stride m, from x0.flat[h]
        o0 = (h0 // m) * n * m + h0 % m
        o1 = (h1 // m) * n * m + h1 % m
        o2 = (h2 // m) * n * m + h2 % m
        o3 = (h3 // m) * n * m + h3 % m
        s0, s1, s2, s3 = x0[h0], x0[h1], x0[h2], x0[h3]
        if na == n:  # time-varying: A has the layout of b
            _run4(A, b, x, o0, o1, o2, o3, m, n, s0, s1, s2, s3)
        else:  # time-invariant, A is (B, 1, m): chain h has the coefficient A.flat[h]
            _run4_invariant(A[h0], A[h1], A[h2], A[h3], b, x, o0, o1, o2, o3, m, n, s0, s1, s2, s3)


_DIAG_SEQUENTIAL = _twins(_diag_sequential_kernel)


def _per_task(chains: int, target_tasks: int) -> int:
    """Chains per task: four, unless fewer are needed to give ``target_tasks`` tasks."""
    return max(1, min(4, chains // max(target_tasks, 1)))


def diag_sequential(A, b, x0):
    """The loop ``x_k = A_k * x_{k-1} + b_k`` over the ``B*m`` independent scalar chains,
    four per task in lockstep; tasks in parallel.

    ``A`` may be time-invariant, ``(B, 1, m)`` (``diag_sequential.invariant_A``): each chain's
    coefficient stays in a register instead of being repeated along the sequence.
    """
    nb, n, m = b.shape
    x = np.empty(b.shape, dtype=b.dtype)
    if x.size:
        per = _per_task(nb * m, _threads())
        kernel = _pick(_DIAG_SEQUENTIAL, -(-nb * m // per), 2 * nb * n * m)
        kernel(A.reshape(-1), b.reshape(-1), x0.reshape(-1), n, m, A.shape[1], per, x.reshape(-1))
    return x


diag_sequential.invariant_A = True


@jit
def _diag_scan_span(As, bs, Ad, bd, sm, lo, hi, o):
    """Elements ``lo .. hi-1`` of the sequence at flat offset ``o``, one level at stride
    ``sm = s*m`` elements (contiguous runs, so the loops vectorize)."""
    e1 = min(hi, max(lo, sm))
    e2 = min(hi, max(lo, 2 * sm))
    for e in range(o + lo, o + e1):
        bd[e] = bs[e]
    for e in range(o + e1, o + hi):
        bd[e] = As[e] * bs[e - sm] + bs[e]
    for e in range(o + e2, o + hi):  # maps that do not reach back to the start yet
        Ad[e] = As[e] * As[e - sm]


_SPAN = 4096  # elements per task of a diagonal scan level


def _diag_pcr_kernel(A, b, x0, n, m, A1, A2, b1, b2):
    size = n * m
    spans = -(-size // _SPAN)
    tasks = (x0.shape[0] // m) * spans
    # Fold x0 into the first map: b_0 becomes A_0 * x0 + b_0.
    for t in prange(tasks):
        bb = t // spans
        lo = (t - bb * spans) * _SPAN
        hi = min(size, lo + _SPAN)
        o = bb * size
        for e in range(o + lo, o + hi):
            b1[e] = b[e]
        for e in range(lo, min(hi, m)):
            b1[o + e] = A[o + e] * x0[bb * m + e] + b[o + e]
    if n <= 1:
        return b1
    for t in prange(tasks):
        bb = t // spans
        lo = (t - bb * spans) * _SPAN
        _diag_scan_span(A, b1, A1, b2, m, lo, min(size, lo + _SPAN), bb * size)
    s = 2
    while s < n:
        for t in prange(tasks):
            bb = t // spans
            lo = (t - bb * spans) * _SPAN
            _diag_scan_span(A1, b2, A2, b1, s * m, lo, min(size, lo + _SPAN), bb * size)
        A1, A2 = A2, A1
        b1, b2 = b2, b1
        s *= 2
    return b2


_DIAG_PCR = _twins(_diag_pcr_kernel)


def diag_pcr(A, b, x0):
    """Hillis-Steele scan of the elementwise affine maps; ceil(log2 n) levels, each split
    into contiguous spans of the flattened sequence, in parallel."""
    nb, n, m = b.shape
    if nb * n * m == 0:
        return np.empty(b.shape, dtype=b.dtype)
    size = nb * n * m
    A1 = np.empty(size if n > 2 else 1, dtype=A.dtype)
    A2 = np.empty(size if n > 4 else 1, dtype=A.dtype)
    b1, b2 = np.empty(size, dtype=b.dtype), np.empty(size, dtype=b.dtype)
    kernel = _pick(_DIAG_PCR, nb * -(-n * m // _SPAN), 3 * size * _levels(n))
    x = kernel(A.reshape(-1), b.reshape(-1), x0.reshape(-1), n, m, A1, A2, b1, b2)
    return x.reshape(b.shape)


@jit
def _chain_span(h, n, m, p, clen):
    """Offset and length of chain ``h = (bb*p + c)*m + j``: chunk ``c`` of component ``j``."""
    j = h % m
    bc = h // m
    bb = bc // p
    c = bc - bb * p
    start = c * clen
    length = max(0, min(clen, n - start))
    return (bb * n + start) * m + j, length


def _diag_hybrid_kernel(A, b, x0, n, m, p, per, P, q, x):
    nb = x0.shape[0] // m
    chains = nb * p * m
    clen = -(-n // p)
    tasks = -(-chains // per)
    # 1. Compose every chunk's maps (P = 1, q = 0 on entry): P = product of A, q = the
    #    chunk run from a zero state.
    for t in prange(tasks):
        h0, h1, h2, h3 = _lanes(t, per, chains)
        o0, l0 = _chain_span(h0, n, m, p, clen)
        o1, l1 = _chain_span(h1, n, m, p, clen)
        o2, l2 = _chain_span(h2, n, m, p, clen)
        o3, l3 = _chain_span(h3, n, m, p, clen)
        k = min(l0, l1, l2, l3)
        P0, P1, P2, P3, q0, q1, q2, q3 = _compose4(
            A, b, o0, o1, o2, o3, m, k, P[h0], P[h1], P[h2], P[h3], q[h0], q[h1], q[h2], q[h3]
        )
        P[h0], q[h0] = _compose1(A, b, o0, m, k, l0, P0, q0)
        P[h1], q[h1] = _compose1(A, b, o1, m, k, l1, P1, q1)
        P[h2], q[h2] = _compose1(A, b, o2, m, k, l2, P2, q2)
        P[h3], q[h3] = _compose1(A, b, o3, m, k, l3, P3, q3)
    # 2. Scan the carries per component: q[h] becomes the state before its chunk.
    for g in prange(nb * m):
        bb = g // m
        j = g - bb * m
        st = x0[g]
        for c in range(p):
            h = (bb * p + c) * m + j
            nxt = P[h] * st + q[h]
            q[h] = st
            st = nxt
    # 3. Re-run every chunk from its start state.
    for t in prange(tasks):
        h0, h1, h2, h3 = _lanes(t, per, chains)
        o0, l0 = _chain_span(h0, n, m, p, clen)
        o1, l1 = _chain_span(h1, n, m, p, clen)
        o2, l2 = _chain_span(h2, n, m, p, clen)
        o3, l3 = _chain_span(h3, n, m, p, clen)
        k = min(l0, l1, l2, l3)
        s0, s1, s2, s3 = _run4(A, b, x, o0, o1, o2, o3, m, k, q[h0], q[h1], q[h2], q[h3])
        _run1(A, b, x, o0, m, k, l0, s0)
        _run1(A, b, x, o1, m, k, l1, s1)
        _run1(A, b, x, o2, m, k, l2, s2)
        _run1(A, b, x, o3, m, k, l3, s3)


_DIAG_HYBRID = _twins(_diag_hybrid_kernel)


def diag_hybrid(A, b, x0, *, chunks=None):
    """Chunked three-phase scan for a diagonal ``A``.

    ``chunks`` is the number of chunks per sequence. The work is about 2.5x the loop's, but
    it splits a few long sequences over all cores; the default makes enough chunks for
    about two tasks of four lockstep chains per thread (at least 1024 rows each), and none
    (the loop itself) when the ``B*m`` chains already give every thread four.
    """
    nb, n, m = b.shape
    if nb * n * m == 0:
        return np.empty(b.shape, dtype=b.dtype)
    if chunks is None:
        threads = _threads()
        chunks = min(-(-8 * threads // (nb * m)), n // 1024) if nb * m < 4 * threads else 1
        if chunks <= 1:
            return diag_sequential(A, b, x0)
    p = max(1, min(int(chunks), n))
    per = _per_task(nb * p * m, _threads())
    x = np.empty(b.shape, dtype=b.dtype)
    P = np.ones(nb * p * m, dtype=b.dtype)
    q = np.zeros(nb * p * m, dtype=b.dtype)
    kernel = _pick(_DIAG_HYBRID, -(-nb * p * m // per), 5 * nb * n * m)
    kernel(A.reshape(-1), b.reshape(-1), x0.reshape(-1), n, m, p, per, P, q, x.reshape(-1))
    return x
