"""``momentum="pooled"``: the exact statistics of every value seen, held
against scikit-learn's StandardScaler.partial_fit and exact arithmetic."""

import numpy as np
import pytest
from exact import assert_close_to_exact, exact_batch
from sklearn.preprocessing import StandardScaler

from skbn import BatchNormScaler


def _chunks(seed=0, n=7, rows=(1, 40), width=4, offset=0.0):
    rng = np.random.default_rng(seed)
    spread = np.array([1, 10, 1e-3, 5] * width)[:width]
    return [offset + rng.normal(size=(int(rng.integers(*rows)), width)) * spread for _ in range(n)]


def test_after_every_chunk_equals_standard_scaler_and_exact():
    ours = BatchNormScaler(momentum="pooled", epsilon=0.0)
    theirs = StandardScaler()
    seen = []
    for chunk in _chunks():
        ours.partial_fit(chunk)
        theirs.partial_fit(chunk)
        seen.append(chunk)
        np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
        np.testing.assert_allclose(ours.var_, theirs.var_, rtol=1e-12)
        np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=1e-12)
        assert ours.n_samples_seen_ == theirs.n_samples_seen_
        exact = exact_batch(np.vstack(seen))
        assert_close_to_exact(ours.mean_, [e[1] for e in exact], 1e-14)
        assert_close_to_exact(ours.var_, [e[2] for e in exact], 1e-13)


def test_large_offset_stream_stays_exact():
    """1e9 + N(0, 1) in many chunks: the means carry what rounding lost."""
    chunks = _chunks(seed=1, n=40, rows=(50, 200), width=2, offset=1e9)
    ours = BatchNormScaler(momentum="pooled")
    for chunk in chunks:
        ours.partial_fit(chunk)
    exact = exact_batch(np.vstack(chunks))
    assert_close_to_exact(ours.var_, [e[2] for e in exact], 1e-12)
    assert_close_to_exact(ours.mean_, [e[1] for e in exact], 1e-16)


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_batch_size_does_not_matter(batch_size):
    X = np.vstack(_chunks(seed=2))
    whole = BatchNormScaler(momentum="pooled").fit(X)
    sliced = BatchNormScaler(momentum="pooled", batch_size=batch_size).fit(X)
    np.testing.assert_allclose(sliced.mean_, whole.mean_, rtol=1e-12)
    np.testing.assert_allclose(sliced.var_, whole.var_, rtol=1e-12)
    assert sliced.n_samples_seen_ == whole.n_samples_seen_ == len(X)


def test_weights_and_nan_per_feature():
    rng = np.random.default_rng(3)
    chunks = _chunks(seed=3)
    weights = [rng.integers(0, 4, size=len(c)).astype(float) for c in chunks]
    for c in chunks:
        c[rng.random(c.shape) < 0.2] = np.nan
    ours = BatchNormScaler(momentum="pooled", epsilon=0.0)
    theirs = StandardScaler()
    for c, w in zip(chunks, weights, strict=True):
        ours.partial_fit(c, sample_weight=w)
        theirs.partial_fit(c, sample_weight=w)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.var_, theirs.var_, rtol=1e-12)
    np.testing.assert_allclose(ours.n_samples_seen_, theirs.n_samples_seen_, rtol=1e-15)
    exact = exact_batch(np.vstack(chunks), np.concatenate(weights))
    assert_close_to_exact(ours.var_, [e[2] for e in exact], 1e-13)


def test_unbiased_multiplies_by_n_over_n_minus_1():
    X = np.vstack(_chunks(seed=4))
    ours = BatchNormScaler(momentum="pooled", unbiased=True, batch_size=5).fit(X)
    np.testing.assert_allclose(ours.var_, X.var(axis=0, ddof=1), rtol=1e-12)
    # one sample: the variance is not updated (it keeps its starting value, 1)
    single = BatchNormScaler(momentum="pooled", unbiased=True).partial_fit([[3.0, 4.0]])
    assert single.var_.tolist() == [1.0, 1.0] and single.mean_.tolist() == [3.0, 4.0]


def test_init_has_no_effect():
    X = np.vstack(_chunks(seed=5))
    a = BatchNormScaler(momentum="pooled", init="keras", batch_size=9).fit(X)
    b = BatchNormScaler(momentum="pooled", init="debiased", batch_size=9).fit(X)
    np.testing.assert_array_equal(a.mean_, b.mean_)
    np.testing.assert_array_equal(a.var_, b.var_)


def test_beyond_standard_scaler_near_the_float64_limit():
    """scikit-learn's partial_fit overflows there (its issue #5602); pooled does not."""
    X = np.full((6, 2), 1.5e308)
    X[::2] *= -1
    ours = BatchNormScaler(momentum="pooled")
    for chunk in (X[:3], X[3:]):
        ours.partial_fit(chunk)
    assert np.isfinite(ours.mean_).all()
    exact = exact_batch(X)
    assert_close_to_exact(ours.mean_, [e[1] for e in exact], 1e-15, atol=1e293)


def test_save_mid_stream_resumes_exactly():
    import pickle

    chunks = _chunks(seed=6, offset=1e9)
    a = BatchNormScaler(momentum="pooled")
    for c in chunks[:3]:
        a.partial_fit(c)
    b = pickle.loads(pickle.dumps(a))
    for c in chunks[3:]:
        a.partial_fit(c)
        b.partial_fit(c)
    np.testing.assert_array_equal(a.mean_, b.mean_)
    np.testing.assert_array_equal(a.var_, b.var_)
