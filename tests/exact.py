"""SPEC section 3 written out in exact rational arithmetic, as a test oracle.

Independent of ``skbn``: plain loops over ``fractions.Fraction``, straight from
the formulas, so a float result can be checked against the true value.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def exact_batch(X, weights=None):
    """Per feature: (m, mu, s2) as Fractions over the non-NaN rows; None if m == 0."""
    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    w = [Fraction(1)] * n if weights is None else [Fraction(float(v)) for v in weights]
    out = []
    for j in range(p):
        rows = [(w[i], Fraction(float(X[i, j]))) for i in range(n) if not math.isnan(X[i, j])]
        m = sum((wi for wi, _ in rows), Fraction(0))
        if m == 0:
            out.append(None)
            continue
        mu = sum(wi * x for wi, x in rows) / m
        s2 = sum(wi * (x - mu) ** 2 for wi, x in rows) / m
        out.append((m, mu, s2))
    return out


class ExactScaler:
    """The moving statistics of SPEC section 3, exactly."""

    def __init__(self, n_features, momentum=0.99, unbiased=False, init="debiased"):
        self.momentum = None if momentum is None else Fraction(momentum)
        self.unbiased = unbiased
        self.init = init
        self.mean = [Fraction(0)] * n_features
        self.var = [Fraction(1)] * n_features
        self.mean_weight = [Fraction(0)] * n_features
        self.var_weight = [Fraction(0)] * n_features
        self.mean_count = [0] * n_features
        self.var_count = [0] * n_features

    def _alpha(self, weights, counts, j):
        counts[j] += 1
        if self.momentum is None:
            return Fraction(1, counts[j])
        step = 1 - self.momentum
        if self.init == "keras":
            return step
        weights[j] = self.momentum * weights[j] + step
        return step / weights[j]

    def partial_fit(self, X, weights=None):
        return self.apply(exact_batch(X, weights))

    def apply(self, batch):
        """One update from a batch's per-feature ``(m, mu, s2)`` (``None``: no value)."""
        for j, stats in enumerate(batch):
            if stats is None:
                continue
            m, mu, s2 = stats
            a = self._alpha(self.mean_weight, self.mean_count, j)
            self.mean[j] += a * (mu - self.mean[j])
            if self.unbiased:
                if m <= 1:
                    continue
                s2 = s2 * m / (m - 1)
            a = self._alpha(self.var_weight, self.var_count, j)
            self.var[j] += a * (s2 - self.var[j])
        return self


def assert_close_to_exact(actual, exact, rtol, atol=0.0):
    """Every float in ``actual`` is within rtol (relative) of its Fraction."""
    actual = np.asarray(actual, dtype=np.float64)
    for j, (a, e) in enumerate(zip(actual, exact, strict=True)):
        err = abs(Fraction(float(a)) - e)
        assert err <= rtol * abs(e) + Fraction(atol), (
            f"feature {j}: {a!r} vs exact {float(e)!r}, error {float(err)!r}"
        )
