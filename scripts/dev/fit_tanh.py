"""Fits the rational approximation of tanh used for float in lib/ops/fast_math.hpp.

tanh(x) ~ x P(u) / Q(u), u = x^2, on [0, 9]; P of degree 6 and Q of degree 3 in u, Q(0) = 1.
Solved in the scaled variable s = u / 81 (well conditioned), first by Loeb's iteratively
reweighted least squares on the linearized relative error, then refined by Lawson's weights
towards the minimax relative error. Prints the coefficients (in u) and the max relative error
of the float64 fit. Run: /usr/bin/python3 scripts/dev/fit_tanh.py   (needs python3-numpy)
"""
import numpy as np

x = np.concatenate([np.geomspace(1e-4, 0.5, 3000), np.linspace(0.5, 9.0, 9000)])
t = np.tanh(x)
s = x * x / 81.0
NP, NQ = 7, 4  # P: p0..p6, Q: 1, q1..q3
def basis(w):
    # x P(s) / t - (Q(s) - 1) = 1, weighted
    A = np.column_stack([x * s**k / t for k in range(NP)] + [-(s**k) for k in range(1, NQ)])
    return A * w[:, None], w
loeb = np.ones_like(x)
lawson = np.ones_like(x) / len(x)
for it in range(200):
    A, rhs = basis(loeb * np.sqrt(lawson))
    coef, *_ = np.linalg.lstsq(A, rhs, rcond=None)
    p, q = coef[:NP], np.concatenate([[1.0], coef[NP:]])
    Q = sum(q[k] * s**k for k in range(NQ))
    P = sum(p[k] * s**k for k in range(NP))
    err = np.abs(x * P / Q - t) / t
    loeb = 1.0 / np.abs(Q)
    if it >= 20:
        lawson = lawson * (err / err.max() + 1e-3)
        lawson /= lawson.sum()
# back to coefficients in u = x^2: c_k(u) = c_k(s) / 81^k
pu = [float(p[k] / 81.0**k) for k in range(NP)]
qu = [float(q[k] / 81.0**k) for k in range(NQ)]
print("p =", ", ".join(repr(v) for v in pu))
print("q =", ", ".join(repr(v) for v in qu))
print("max relative error (float64 fit): %.3g" % err.max())
