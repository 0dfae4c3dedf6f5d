"""The fast kernels give the same bits as the plain path, whatever the layout.

``dense_moments`` (blocked one-pass shifted sums), ``affine`` (the flat, tiled
map of ``transform``) and the lean validation path of ``_validate_X`` are
checked, bit for bit, across ``n_jobs`` in (None, 1, 2, -1), C and F order,
read-only and non-contiguous inputs, float32 and float64.  Small block sizes
give many blocks on small arrays.  Nothing here is timed.
"""

from fractions import Fraction

import numpy as np
import pytest
from exact import assert_close_to_exact, exact_batch

import skbn._affine
import skbn._scaler
from skbn import BatchNormScaler, _stats

N_JOBS = [None, 1, 2, -1]
DTYPES = [np.float64, np.float32]


def layouts(X):
    """The same values as ``X`` in several memory layouts, by name."""
    n, p = X.shape
    readonly = X.copy()
    readonly.flags.writeable = False
    fortran_readonly = np.asfortranarray(X)
    fortran_readonly.flags.writeable = False
    wide = np.zeros((n, 2 * p), dtype=X.dtype)
    wide[:, ::2] = X
    tall = np.zeros((2 * n, p), dtype=X.dtype)
    tall[::2] = X
    both = np.zeros((2 * n, 3 * p), dtype=X.dtype, order="F")
    both[::2, ::3] = X
    return {
        "C": X.copy(),
        "F": np.asfortranarray(X),
        "C read-only": readonly,
        "F read-only": fortran_readonly,
        "X[:, ::2]": wide[:, ::2],
        "X[::2]": tall[::2],
        "F X[::2, ::3]": both[::2, ::3],
    }


def assert_same_bits(actual, expected, where=""):
    """Same dtype, shape and bytes (so NaNs and signed zeros must match too)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, where
    assert actual.shape == expected.shape, where
    a = np.ascontiguousarray(actual)
    b = np.ascontiguousarray(expected)
    if not np.array_equal(a.view(np.uint8), b.view(np.uint8)):
        diff = np.flatnonzero(a != b)
        raise AssertionError(f"{where}: bits differ at {diff.size} place(s), first {diff[:5]}")


def assert_same_moments(actual, expected):
    for a, b in zip(actual, expected, strict=True):
        assert_same_bits(a, b)


def _data(dtype, n=403, p=5, seed=0):
    """Offsets, scales and a NaN column: 403 rows so the last block is short."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * [1.0, 1e-3, 50.0, 1.0, 2.0][:p] + [0, 1e3, -3, 7, 1e5][:p]
    X[rng.random(n) < 0.05, 3] = np.nan
    return X.astype(dtype)


# -- (a) dense_moments: same bits for every n_jobs and layout ----------------------

BLOCK = 8 * 5 * 16  # 16 rows per block of 5 features: 26 blocks of 403 rows


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_dense_moments_same_bits_for_every_n_jobs_and_layout(dtype, weighted):
    X = _data(dtype)
    w = np.random.default_rng(1).random(len(X)) if weighted else None
    reference = _stats.dense_moments(X, w, block_rows=16)
    assert len(_stats.moment_blocks(*X.shape, 16)) > 20
    for name, data in layouts(X).items():
        for n_jobs in N_JOBS:
            got = _stats.dense_moments(data, w, n_jobs=n_jobs, block_rows=16)
            try:
                assert_same_moments(got, reference)
            except AssertionError as exc:
                raise AssertionError(f"layout {name}, n_jobs={n_jobs}: {exc}") from None


def test_dense_moments_does_not_write_to_its_input():
    for name, data in layouts(_data(np.float64)).items():
        before = data.copy()
        _stats.dense_moments(data, n_jobs=2, block_rows=16)
        assert_same_bits(data, before, name)


# -- (b) dense_moments with many blocks: exact to 1e-12 --------------------------


def _hard_columns(dtype, n=600, seed=2):
    """Columns that stress the one-pass shifted sums."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=n)
    jump = noise.copy()
    jump[16:] += 1e8  # the shift (first block's mean) is far from the mean
    columns = [
        1e9 + noise,  # large offset
        np.sort(rng.uniform(-5, 5, size=n)),  # sorted: each block's mean differs
        jump,
        rng.normal(-2e5, 1e-2, size=n),  # tiny spread under a big mean
        rng.lognormal(0, 2, size=n),  # skewed
    ]
    return np.column_stack(columns).astype(dtype)


def _check_exact(got, X, w, rtol=1e-12, check_var=True):
    stats = exact_batch(X, w)
    assert_close_to_exact(got.weight, [s[0] for s in stats], 1e-15)
    assert_close_to_exact(got.mean, [s[1] for s in stats], rtol)
    if check_var:
        assert_close_to_exact(got.var, [s[2] for s in stats], rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_dense_moments_many_blocks_match_exact(dtype, weighted):
    X = _hard_columns(dtype)
    w = np.random.default_rng(3).integers(0, 5, size=len(X)).astype(float) if weighted else None
    got = _stats.dense_moments(X, w, block_rows=16)
    _check_exact(got, X, w)
    for n_jobs in N_JOBS:  # the same bits, so the same accuracy
        assert_same_moments(_stats.dense_moments(X, w, n_jobs, 16), got)


def _far_shift_case():
    """The first block has zero weight, so the shift is 0: 1e9 standard
    deviations from the mean of column 0, 1e8 from that of the jump column."""
    X = _hard_columns(np.float64)
    w = np.random.default_rng(4).random(len(X))
    w[:16] = 0.0
    return X, w


def _nan_case():
    X = _hard_columns(np.float64)
    X[::7, 1] = np.nan
    X[:16, 2] = np.nan  # a whole first block missing: shift 0 for that column
    X[100, 0] = np.nan
    return X, None


@pytest.mark.parametrize("n_jobs", N_JOBS)
def test_fallback_guard_when_shift_is_far_from_mean(n_jobs, monkeypatch):
    # The shifted sums would lose every digit of columns 0, 2 and 3: the guard
    # must recompute those columns (only those) block by block.
    X, w = _far_shift_case()
    calls = []
    unpinned = _stats._unpinned_block

    def spy(block, weights, wide):
        calls.append(block.shape)
        return unpinned(block, weights, wide)

    monkeypatch.setattr(_stats, "_unpinned_block", spy)
    got = _stats.dense_moments(X, w, n_jobs=n_jobs, block_rows=16)
    n_blocks = len(_stats.moment_blocks(*X.shape, 16))
    assert len(calls) == 1 + n_blocks  # the first block, then every block again
    # only the bad columns, every block once (threads may call in any order)
    last_rows = X.shape[0] - 16 * (n_blocks - 1)
    assert sorted(calls[1:]) == sorted([(16, 3)] * (n_blocks - 1) + [(last_rows, 3)])
    _check_exact(got, X, w, check_var=False)
    monkeypatch.undo()
    assert_same_moments(_stats.dense_moments(X, w, block_rows=16), got)


@pytest.mark.parametrize("n_jobs", N_JOBS)
def test_nan_columns_take_careful_path_same_bits_and_exact_mean(n_jobs):
    X, _ = _nan_case()
    got = _stats.dense_moments(X, n_jobs=n_jobs, block_rows=16)
    assert_same_moments(got, _stats.dense_moments(X, block_rows=16))
    _check_exact(got, X, None, check_var=False)


#: The careful (NaN / far-shift) path merges per-block moments with Chan's
#: formula, whose rounded block means would cost about 1e-9 of the variance
#: for 1e9 + N(0, 1); one more pass shifted by the merged mean removes that.
@pytest.mark.parametrize("case", ["far shift", "NaN"])
def test_careful_path_variance_exact(case):
    X, w = _far_shift_case() if case == "far shift" else _nan_case()
    _check_exact(_stats.dense_moments(X, w, block_rows=16), X, w)


def test_spec_large_offset_with_nan_in_wide_data():
    # SPEC section 5: correct to 1e-9 relative for 1e9 + N(0, 1) data.  With
    # 500 features a 2 MiB block holds 524 rows, and columns holding NaN take
    # the careful path, block by block.
    rng = np.random.default_rng(1)
    X = 1e9 + rng.standard_normal((6000, 500))
    X[:, :8][rng.random((6000, 8)) < 0.01] = np.nan  # only in the first 8 columns
    scaler = BatchNormScaler(epsilon=0.0).fit(X)
    stats = exact_batch(X[:, :8])
    assert_close_to_exact(scaler.moving_mean_[:8], [s[1] for s in stats], 1e-15)
    assert_close_to_exact(scaler.moving_var_[:8], [s[2] for s in stats], 1e-9)


# -- (c) transform / inverse_transform: bits of a plain NumPy reference ----------


def _reference(scaler, X, inverse=False):
    """The map written out in NumPy, in ``X``'s dtype, in the kernel's order."""
    dtype = X.dtype
    factor = np.ones(X.shape[1]) if not scaler.scale else scaler.gamma_
    factor = (factor / np.sqrt(scaler.moving_var_ + scaler.epsilon)).astype(dtype)
    mean = scaler.moving_mean_.astype(dtype) if scaler.with_mean else None
    beta = scaler.beta_.astype(dtype) if scaler.center else None
    X = np.asarray(X)
    if inverse:
        out = X - beta if beta is not None else X
        out = out / factor
        return out + mean if mean is not None else out
    out = X - mean if mean is not None else X
    out = out * factor
    return out + beta if beta is not None else out


CONFIGS = [
    dict(gamma=[0.5, 2.0, -1.0, 3.0, 1.5], beta=[0.25, -1.0, 4.0, 0.0, 2.0]),
    dict(center=False, gamma=2.5),
    dict(with_mean=False, scale=False, beta=1.0),
]


@pytest.fixture
def many_affine_blocks(monkeypatch):
    """7-row blocks of the affine map (5 float64 features)."""
    monkeypatch.setattr(skbn._affine, "AFFINE_BLOCK_BYTES", 8 * 5 * 7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", range(len(CONFIGS)))
@pytest.mark.usefixtures("many_affine_blocks")
def test_transform_same_bits_as_numpy_reference(dtype, config):
    X = _data(dtype)
    fitted = BatchNormScaler(epsilon=1e-3, **CONFIGS[config]).fit(X)
    expected = _reference(fitted, X)
    assert expected.dtype == dtype
    expected_inverse = _reference(fitted, expected, inverse=True)
    for n_jobs in N_JOBS:
        scaler = fitted.set_params(n_jobs=n_jobs)
        for name, data in layouts(X).items():
            before = data.copy()
            where = f"layout {name}, n_jobs={n_jobs}"
            got = scaler.transform(data)
            assert_same_bits(got, expected, where)
            assert_same_bits(data, before, where)  # copy=True: input untouched
            for yname, Y in layouts(expected).items():
                back = scaler.inverse_transform(Y)
                assert_same_bits(back, expected_inverse, f"{where}, inverse {yname}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_jobs", N_JOBS)
@pytest.mark.usefixtures("many_affine_blocks")
def test_in_place_transform_same_bits(dtype, n_jobs):
    X = _data(dtype)
    scaler = BatchNormScaler(gamma=1.5, beta=-0.5, n_jobs=n_jobs).fit(X)
    expected = _reference(scaler, X)
    expected_inverse = _reference(scaler, expected, inverse=True)
    for name, data in layouts(X).items():
        got = scaler.transform(data, copy=False)
        assert_same_bits(got, expected, name)
        if data.flags.writeable:  # written in place, even through a strided view
            assert np.shares_memory(got, data), name
            assert_same_bits(data, expected, name)
        else:
            assert not np.shares_memory(got, data), name
            assert_same_bits(data, X, name)
    for name, data in layouts(expected).items():
        back = scaler.inverse_transform(data, copy=False)
        assert_same_bits(back, expected_inverse, name)
        assert np.shares_memory(back, data) == data.flags.writeable, name


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_block_and_many_blocks_agree(dtype, monkeypatch):
    X = _data(dtype, n=1000)
    scaler = BatchNormScaler(gamma=0.7, beta=0.1).fit(X)
    one_block = scaler.transform(X)
    assert len(skbn._affine.row_blocks(*X.shape, skbn._affine.AFFINE_BLOCK_BYTES)) == 1
    monkeypatch.setattr(skbn._affine, "AFFINE_BLOCK_BYTES", 8 * 5 * 3)
    for n_jobs in N_JOBS:
        assert_same_bits(scaler.set_params(n_jobs=n_jobs).transform(X), one_block)


# -- (d) the lean validation path gives what validate_data gives -----------------


@pytest.fixture
def validate_calls(monkeypatch):
    """Count the calls that go through sklearn's ``validate_data``."""
    calls = []
    validate = skbn._input.validate_data

    def spy(*args, **kwargs):
        calls.append(type(args[1]).__name__)
        return validate(*args, **kwargs)

    monkeypatch.setattr(skbn._input, "validate_data", spy)
    return calls


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.usefixtures("many_affine_blocks")
def test_lean_validation_path_same_as_full_path(dtype, validate_calls, tmp_path):
    X = _data(dtype, n=200)
    batch = _data(dtype, n=120, seed=5)
    mm = np.memmap(tmp_path / "batch.dat", dtype=dtype, mode="w+", shape=batch.shape)
    mm[:] = batch
    mm.flush()
    inputs = {"list": batch.tolist(), "memmap": mm, "subclass": batch.view(_Sub)}
    lean = BatchNormScaler(momentum=0.5).fit(X)
    full = {name: BatchNormScaler(momentum=0.5).fit(X) for name in inputs}
    validate_calls.clear()

    lean.partial_fit(batch)
    expected = lean.transform(batch)
    expected_inverse = lean.inverse_transform(expected)
    assert validate_calls == []  # the ndarray took the lean path
    for name, data in inputs.items():
        scaler = full[name]
        scaler.partial_fit(data)
        assert validate_calls, name  # ...and these the full one
        validate_calls.clear()
        for attr in ("moving_mean_", "moving_var_", "n_samples_seen_", "n_batches_seen_"):
            assert_same_bits(getattr(scaler, attr), getattr(lean, attr), f"{name}: {attr}")
        if name == "list":  # a list of Python floats becomes float64
            continue
        got = scaler.transform(data)
        assert type(got) is np.ndarray and got.dtype == dtype, name
        assert_same_bits(got, expected, name)
        back = scaler.inverse_transform(np.asarray(got).view(_Sub))
        assert_same_bits(back, expected_inverse, name)
    lean64 = BatchNormScaler(momentum=0.5).fit(X.astype(np.float64))
    lean64.partial_fit(batch.astype(np.float64))
    assert_same_bits(full["list"].moving_var_, lean64.moving_var_)
    assert_same_bits(
        full["list"].transform(batch.tolist()), lean64.transform(batch.astype(np.float64))
    )


class _Sub(np.ndarray):
    """An ndarray subclass: not ``type(X) is np.ndarray``, so validate_data runs."""


# -- (e) inf in the last block ----------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.usefixtures("many_affine_blocks")
def test_inf_in_last_block_found_and_input_untouched(dtype, copy):
    X = _data(dtype)
    scaler = BatchNormScaler(beta=1.0).fit(X)
    bad = X.copy()
    bad[-1, 2] = -np.inf  # the very last row: the last of many blocks
    assert len(skbn._affine.row_blocks(*X.shape, skbn._affine.AFFINE_BLOCK_BYTES)) > 50
    for n_jobs in N_JOBS:
        scaler.set_params(n_jobs=n_jobs)
        for name, data in layouts(bad).items():
            before = data.copy()
            for method in (scaler.transform, scaler.inverse_transform):
                with pytest.raises(ValueError, match=r"infinity in feature\(s\) \[2\]"):
                    method(data, copy=copy)
                assert_same_bits(data, before, f"{name}, n_jobs={n_jobs}, {method.__name__}")


@pytest.mark.parametrize("n_jobs", N_JOBS)
def test_inf_in_last_block_refused_by_partial_fit(n_jobs):
    # dense_moments' block size is fixed (2 MiB of float64): 3 blocks here.
    X = _data(np.float64, n=120_000)
    assert len(_stats.row_blocks(*X.shape)) == 3
    scaler = BatchNormScaler(n_jobs=n_jobs).fit(X)
    before = {k: np.copy(v) for k, v in scaler.__getstate__().items() if k.endswith("_")}
    bad = X.copy()
    bad[-1, 4] = np.inf
    for name, data in layouts(bad).items():
        with pytest.raises(ValueError, match=r"infinity in feature\(s\) \[4\]"):
            scaler.partial_fit(data)
        for key, value in before.items():  # nothing is lost on a bad batch
            assert_same_bits(getattr(scaler, key), value, f"{name}: {key}")


def test_exact_oracle_is_exact():
    # Guard against a vacuous comparison: the oracle sees float32 data exactly.
    X = np.array([[0.1], [0.2], [0.7]], dtype=np.float32)
    ((m, mu, _),) = exact_batch(X)
    assert m == 3 and mu == sum(Fraction(float(v)) for v in X[:, 0]) / 3


# -- (f) the compiled kernels (skbn._kernels) ---------------------------------------

EPS = np.finfo(np.float64).eps


def test_the_compiled_kernels_are_built():
    """skbn installs them wherever a C compiler is found (as in CI); without
    them it is correct but slower for small batches."""
    from skbn import _averaging, _kernels

    assert _stats._kernels is _kernels, "skbn was installed without its compiled kernels"
    assert _averaging._plain_step is _kernels.plain_step


def _spread(seed, n, spreads):
    """Columns with a mean of about 1 and standard deviations ``spreads``:
    the harder case for a mean, whose rounding errors scale with the spread."""
    rng = np.random.default_rng(seed)
    return 1.0 + rng.normal(size=(n, len(spreads))) * np.asarray(spreads)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 300, 4096])
def test_compiled_block_moments_match_exact_arithmetic(n):
    """The mean to a rounding of the exact mean, whatever the spread (each
    difference's rounding error is compensated); the variance to a few
    rounding errors (pairwise sums)."""
    from skbn import _kernels

    X = _spread(n, n, [1e-3, 1.0, 1e3, 1e8])
    X[:, 0] += 1e6  # a large offset: the corrected two-pass's other hard case
    out = np.empty(4 * X.shape[1])
    assert _kernels.block_moments(X, out) == (n > 1)  # one row: variance 0, not plain
    mean, var = out[:4], out[4:8]
    for j, (_, mu, s2) in enumerate(exact_batch(X)):
        assert abs(Fraction(float(mean[j])) - mu) <= 2 * EPS * abs(mu), j
        assert abs(Fraction(float(var[j])) - s2) <= 16 * EPS * s2, j


def test_compiled_mean_beats_the_blas_mean_on_wide_spreads():
    """The case that sent this kernel to compensated sums: a spread 1e8 times
    the mean, where summing the differences x - mean0 loses up to ~1e-14 of
    the mean (BLAS or plain pairwise sums); compensated, within 2 eps."""
    worst = 0.0
    for seed in range(10):
        X = np.random.default_rng(seed).normal(size=(300, 1)) * 1e8 - 5.0
        got = _stats.block_moments(X).mean[0]
        mu = exact_batch(X)[0][1]
        worst = max(worst, float(abs((Fraction(float(got)) - mu) / mu)))
    assert worst <= 2 * EPS


def test_compiled_moments_of_a_column_ignore_the_other_columns():
    from skbn import _kernels

    X = _spread(5, 403, [1.0, 1e4, 1e-4, 3.0, 1e8])
    X[::7, 2] = np.nan
    out = np.empty(20)
    _kernels.block_moments(X, out)
    for j in range(5):
        alone = np.empty(4)
        _kernels.block_moments(np.ascontiguousarray(X[:, [j]]), alone)
        assert_same_bits(alone, out[j::5])


@pytest.mark.parametrize(
    "value, plain",
    [(np.nan, False), (np.inf, False), (-np.inf, False), (0.5, True)],
)
def test_compiled_block_moments_report_what_needs_more(value, plain):
    from skbn import _kernels

    X = _spread(6, 16, [1.0, 2.0])
    X[3, 1] = value
    assert _kernels.block_moments(X, np.empty(8)) is plain
    X[:, 1] = 0.1  # constant: a variance within rounding of 0
    assert _kernels.block_moments(X, np.empty(8)) is False


def test_compiled_block_moments_large_blocks_and_threads():
    """A block past the stack's scratch (heap) and past the size that
    releases the GIL: the same bits in parallel threads as alone."""
    from concurrent.futures import ThreadPoolExecutor

    from skbn import _kernels

    X = _spread(7, 5000, np.geomspace(1e-3, 1e6, 300))
    alone = np.empty(1200)
    _kernels.block_moments(X, alone)

    def run(_):
        out = np.empty(1200)
        _kernels.block_moments(X, out)
        return out

    with ThreadPoolExecutor(4) as pool:
        for out in pool.map(run, range(8)):
            assert_same_bits(out, alone)
    for j, (_, mu, s2) in enumerate(exact_batch(X[:, [0, 299]])):
        k = [0, 299][j]
        assert abs(Fraction(float(alone[k])) - mu) <= 2 * EPS * abs(mu)
        assert abs(Fraction(float(alone[300 + k])) - s2) <= 32 * EPS * s2


def test_compiled_block_moments_skip_missing_values():
    """A column with NaN: its moments over the values present (their number
    as its weight), as exact as a complete column's; a column without values,
    or with inf, is left not finite for the careful path."""
    from skbn import _kernels

    X = _spread(10, 300, [1.0, 1e8, 1.0, 1.0, 1.0])
    rng = np.random.default_rng(11)
    X[rng.random(300) < 0.3, 0] = np.nan
    X[rng.random(300) < 0.01, 1] = np.nan
    X[:, 2] = np.nan
    X[5, 3], X[9, 3] = np.nan, np.inf
    out = np.empty(20)
    assert _kernels.block_moments(X, out) is False
    mean, var, weight = out[:5], out[5:10], out[15:]
    for j in (0, 1):
        m, mu, s2 = exact_batch(X[:, [j]])[0]
        assert weight[j] == m < 300
        assert abs(Fraction(float(mean[j])) - mu) <= 2 * EPS * abs(mu)
        assert abs(Fraction(float(var[j])) - s2) <= 16 * EPS * s2
    assert weight[2] == 0 and not np.isfinite(mean[2] + var[2])
    assert not np.isfinite(mean[3] + var[3])  # inf: refused by the caller
    assert weight[4] == 300


def test_missing_values_take_the_compiled_path_in_fit(monkeypatch):
    """fit on data with NaN gives the moments of the values present through
    the compiled block moments: NumPy's careful path is never called."""

    def careful(*args):
        raise AssertionError("the careful path ran")

    monkeypatch.setattr(_stats, "_careful_moments", careful)
    rng = np.random.default_rng(12)
    X = rng.normal(size=(20_000, 3)) * [1.0, 1e3, 3.0] + [1e3, -2e3, 0.5]
    X[rng.random(X.shape) < 0.05] = np.nan
    scaler = BatchNormScaler(momentum="pooled").fit(X)
    for j, (m, mu, s2) in enumerate(exact_batch(X)):
        assert scaler._samples_per_feature_[j] == m
        assert abs(Fraction(float(scaler.moving_mean_[j])) - mu) <= 4 * EPS * abs(mu)
        assert abs(Fraction(float(scaler.moving_var_[j])) - s2) <= 64 * EPS * s2


def test_compiled_shifted_sums_are_numpy_sums_over_present_values():
    """sum (x - K) and sum (x - K)^2 skipping NaN: the bits of NumPy's own
    sums along axis 0 of several columns (row after row), which the refining
    pass used."""
    from skbn import _kernels

    X = _spread(13, 1000, [1.0, 1e6, 1e-3])
    X[::9, 1] = np.nan
    K = np.array([0.5, 3.0, -1.0])
    out = np.empty(6)
    _kernels.shifted_sums(X, K, out)
    d = np.where(np.isnan(X), 0.0, X - K)
    assert_same_bits(out[:3], d.sum(axis=0))
    assert_same_bits(out[3:], (d * d).sum(axis=0))
    with pytest.raises(ValueError, match="2 \\* X.shape"):
        _kernels.shifted_sums(X, K, np.empty(5))


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("terms", ["all", "no shift", "no offset", "factor only"])
def test_compiled_affine_map_is_the_numpy_map(inverse, terms):
    """(x - shift) * factor + offset (or / factor), with the NumPy ufuncs'
    bits, in a new array or in place, and nothing written when X holds inf."""
    from skbn import _kernels

    rng = np.random.default_rng(14)
    X = rng.normal(size=(300, 7)) * 1e3 + 5.0
    X[4, 2] = np.nan
    shift = None if terms in ("no shift", "factor only") else rng.normal(size=7)
    factor = rng.random(7) + 0.1
    offset = None if terms in ("no offset", "factor only") else rng.normal(size=7)
    op = np.divide if inverse else np.multiply
    expected = op(X if shift is None else np.subtract(X, shift), factor)
    expected = expected if offset is None else np.add(expected, offset)
    out = np.empty_like(X)
    assert _kernels.affine_map(X, out, shift, factor, offset, inverse, True) is False
    assert_same_bits(out, expected)
    inplace = X.copy()
    _kernels.affine_map(inplace, inplace, shift, factor, offset, inverse, False)
    assert_same_bits(inplace, expected)
    bad, before = X.copy(), out.copy()
    bad[-1, 5] = -np.inf
    assert _kernels.affine_map(bad, out, shift, factor, offset, inverse, True) is True
    assert_same_bits(out, before)  # nothing written


def test_transform_falls_back_for_coefficients_the_kernel_does_not_read():
    """Attributes set by hand as strided views: NumPy's path maps them."""
    rng = np.random.default_rng(15)
    X = rng.normal(size=(40, 3))
    scaler = BatchNormScaler().fit(X)
    expected = scaler.transform(X[:5])
    scaler.moving_mean_ = np.repeat(scaler.moving_mean_, 2)[::2]
    scaler.beta_ = np.repeat(scaler.beta_, 2)[::2]
    assert_same_bits(scaler.transform(X[:5]), expected)
    scaler.partial_fit(X[:5])  # the compiled step refuses the strided state too
    assert scaler.n_batches_seen_ == 2


def test_compiled_affine_map_refuses_other_arrays():
    from skbn import _kernels

    X, c = np.ones((4, 3)), np.ones(3)
    with pytest.raises(TypeError, match="float64"):
        _kernels.affine_map(X, np.empty((4, 3), np.float32), c, c, c, False, True)
    with pytest.raises(ValueError, match="shape"):
        _kernels.affine_map(X, np.empty((4, 2)), c, c, c, False, True)
    with pytest.raises(ValueError, match="shape"):
        _kernels.affine_map(X, np.empty((4, 3)), np.ones(2), c, None, False, True)


def _step(X, avg, alpha):
    from skbn import _kernels

    n = X.shape[1]
    out, count = np.empty(6 * n), np.empty(n, dtype=np.int64)
    status = _kernels.plain_step(
        X, avg.mean, avg.var, avg.weight, avg.mean_count, alpha, out, count
    )
    return status, out, count


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.01, 1 / 3])
def test_compiled_step_is_the_numpy_update_of_the_block_moments(alpha):
    """plain_step gives the bits of _averaging.update (NumPy) applied to
    block_moments, the update written there as S + alpha (b - S)."""
    from skbn import _averaging

    rng = np.random.default_rng(8)
    X = rng.normal(size=(37, 4)) * [1.0, 1e3, 1e-3, 10.0] + [0.0, 5.0, -1e6, 2.0]
    count = np.full(4, 6, dtype=np.int64)
    avg = _averaging.Averages(
        rng.normal(size=4), rng.random(4) + 0.5, count, count, np.full(4, 90.0),
        np.zeros(4), np.zeros(4),
    )  # fmt: skip
    status, out, new_count = _step(X, avg, alpha)
    assert status == 0
    batch = _stats.block_moments(X)
    for stat, got in ((avg.mean, out[:4]), (avg.var, out[4:8])):
        b = batch.mean if stat is avg.mean else batch.var
        assert_same_bits(got, _averaging.move_toward(stat, b, np.full(4, alpha)))
    assert_same_bits(out[8:12], avg.weight + 37.0)
    assert_same_bits(new_count, count + 1)
    assert_same_bits(out[12:16], batch.mean)
    assert_same_bits(out[16:20], batch.var)


def test_compiled_step_reports_what_needs_more():
    from skbn import _averaging

    count = np.ones(2, dtype=np.int64)
    avg = _averaging.Averages(
        np.zeros(2), np.ones(2), count, count, np.ones(2), np.zeros(2), np.zeros(2)
    )
    X = _spread(9, 8, [1.0, 1.0]) + 10.0
    assert _step(X, avg, 0.5)[0] == 0
    assert _step(X, avg, 1e308)[0] == 2  # (b - S) alpha overflows
    X[2, 1] = np.nan
    assert _step(X, avg, 0.5)[0] == 1


def test_compiled_kernels_refuse_other_arrays():
    from skbn import _kernels

    X = np.ones((4, 3))
    with pytest.raises(TypeError, match="float64"):
        _kernels.block_moments(X.astype(np.float32), np.empty(12))
    with pytest.raises((TypeError, ValueError), match="contiguous"):  # NumPy's own refusal
        _kernels.block_moments(np.asfortranarray(np.ones((4, 3))), np.empty(12))
    with pytest.raises(TypeError, match="2-D"):
        _kernels.block_moments(np.ones(4), np.empty(12))
    with pytest.raises(ValueError, match="4 \\* X.shape"):
        _kernels.block_moments(X, np.empty(11))
    with pytest.raises(ValueError, match="a row"):
        _kernels.block_moments(np.ones((0, 3)), np.empty(12))
    readonly = np.empty(12)
    readonly.flags.writeable = False
    with pytest.raises((TypeError, BufferError, ValueError)):
        _kernels.block_moments(X, readonly)
    v, c = np.ones(3), np.ones(3, dtype=np.int64)
    with pytest.raises(TypeError, match="int64"):
        _kernels.plain_step(X, v, v, v, c.astype(np.int32), 0.5, np.empty(18), c)
    with pytest.raises(ValueError, match="6 \\* X.shape"):
        _kernels.plain_step(X, v, v, v, c, 0.5, np.empty(15), c.copy())
