"""dask arrays and DataFrames give what the computed data gives (SPEC section 6).

Every fitted state is compared with the in-memory estimator fed the computed
data (to 1e-12 relative, NaN handling, ``n_samples_seen_`` and
``n_batches_seen_`` included), on the local threaded scheduler and on a
``distributed`` cluster of two worker processes.
"""

import subprocess
import sys
import threading

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from distributed import Client, LocalCluster

from skbn import BatchNormScaler

RTOL = 1e-12


# -- schedulers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_client():
    """Two worker processes on the loopback interface, shared by the module."""
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(params=["threads", "distributed"])
def scheduler(request):
    """Run the test body on the threaded scheduler, then on the cluster."""
    if request.param == "threads":
        with dask.config.set(scheduler="threads"):
            yield "threads"
    else:
        client = request.getfixturevalue("cluster_client")
        with dask.config.set(scheduler=client):
            yield "distributed"


# -- data and comparisons -------------------------------------------------------------


def _data(n=600, n_features=4, seed=0, nan=True, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=[3.0, -2.0, 10.0, 1e3][:n_features], scale=2.0, size=(n, n_features))
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
        X[:40, 1] = np.nan  # a whole block of one feature missing
    return X.astype(dtype)


def _weights(n, seed=1):
    w = np.random.default_rng(seed).uniform(0.0, 3.0, size=n)
    w[::17] = 0.0
    return w


def assert_same_state(got, expected):
    """The fitted state of a dask-fitted scaler equals the in-memory one."""
    for name in ("moving_mean_", "moving_var_", "gamma_", "beta_"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=RTOL, atol=0)
    np.testing.assert_allclose(got.n_samples_seen_, expected.n_samples_seen_, rtol=RTOL, atol=0)
    assert type(got.n_samples_seen_) is type(expected.n_samples_seen_)
    assert got.n_batches_seen_ == expected.n_batches_seen_
    assert got.n_features_in_ == expected.n_features_in_
    np.testing.assert_array_equal(
        getattr(got, "feature_names_in_", None), getattr(expected, "feature_names_in_", None)
    )
    # The moving statistics continue identically.
    np.testing.assert_array_equal(got._mean_updates_, expected._mean_updates_)
    np.testing.assert_array_equal(got._var_updates_, expected._var_updates_)


CHUNKINGS = {
    "even": (150, 4),
    "uneven": ((1, 99, 250, 7, 243), 4),
    "columns": ((300, 300), (1, 3)),
    "one": (600, 4),
}
CONFIGS = {
    "default": {},
    "keras-unbiased": {"init": "keras", "momentum": 0.9, "unbiased": True},
    "cumulative": {"momentum": None},
}


# -- fitting ------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batch_size", [None, 7, 128, 1000])
@pytest.mark.parametrize("chunks", list(CHUNKINGS))
def test_fit_array_equals_in_memory(scheduler, chunks, batch_size, weighted):
    X = _data()
    w = _weights(len(X)) if weighted else None
    Xd = da.from_array(X, chunks=CHUNKINGS[chunks])
    wd = None if w is None else da.from_array(w, chunks=(Xd.chunks[0],))
    params = {"batch_size": batch_size, "momentum": 0.8}

    got = BatchNormScaler(**params).fit(Xd, sample_weight=wd)
    expected = BatchNormScaler(**params).fit(X, sample_weight=w)
    assert_same_state(got, expected)
    n_expected = 1 if batch_size is None else -(-len(X) // batch_size)
    assert got.n_batches_seen_ == n_expected


@pytest.mark.parametrize("config", list(CONFIGS))
def test_fit_configurations_equal_in_memory(config):
    X, w = _data(seed=3), _weights(600, seed=4)
    for batch_size in (None, 77):
        params = {**CONFIGS[config], "batch_size": batch_size}
        got = BatchNormScaler(**params).fit(
            da.from_array(X, chunks=((100, 1, 199, 300), 4)),
            sample_weight=da.from_array(w, chunks=((100, 1, 199, 300),)),
        )
        assert_same_state(got, BatchNormScaler(**params).fit(X, sample_weight=w))


def test_batch_slices_cross_block_boundaries_in_order():
    # Slices of 10 rows over blocks of 7, 3, 15 and 5 rows: the first slice is
    # two whole blocks, the second starts mid-block, the last is the tail.
    rng = np.random.default_rng(5)
    X = rng.normal(size=(30, 2)) + np.arange(30)[:, None]  # every slice differs
    Xd = da.from_array(X, chunks=((7, 3, 15, 5), 2))
    scaler = BatchNormScaler(batch_size=10, momentum=0.5).fit(Xd)
    manual = BatchNormScaler(momentum=0.5)
    for start in (0, 10, 20):
        manual.partial_fit(X[start : start + 10])
    assert_same_state(scaler, manual)
    # Reversing the slices gives another state: the order is kept.
    backwards = BatchNormScaler(momentum=0.5)
    for start in (20, 10, 0):
        backwards.partial_fit(X[start : start + 10])
    assert not np.allclose(scaler.moving_mean_, backwards.moving_mean_)


def test_one_batch_versus_mini_batches():
    X = _data(nan=False)
    X[:300] += 5.0  # the first half of the rows drifts
    Xd = da.from_array(X, chunks=(100, 4))
    one = BatchNormScaler().fit(Xd)
    mini = BatchNormScaler(batch_size=100).fit(Xd)
    # One batch: the exact mean and variance of all of X.
    np.testing.assert_allclose(one.moving_mean_, X.mean(axis=0), rtol=RTOL)
    np.testing.assert_allclose(one.moving_var_, X.var(axis=0), rtol=RTOL)
    assert one.n_batches_seen_ == 1
    # Mini-batches: the moving average of six batch statistics, which leaves
    # out the between-batch spread of the means.
    assert mini.n_batches_seen_ == 6
    assert (mini.moving_var_ < one.moving_var_).all()
    assert_same_state(mini, BatchNormScaler(batch_size=100).fit(X))
    # partial_fit treats all of a dask X as one batch, whatever batch_size is.
    assert_same_state(BatchNormScaler(batch_size=100).partial_fit(Xd), one)


def test_partial_fit_streams_blocks_and_mixes_with_in_memory(scheduler):
    X, w = _data(seed=6), _weights(600, seed=7)
    Xd = da.from_array(X, chunks=(150, 4))
    wd = da.from_array(w, chunks=150)
    streamed = BatchNormScaler(momentum=0.9, unbiased=True)
    expected = BatchNormScaler(momentum=0.9, unbiased=True)
    for i, block in enumerate(Xd.blocks):
        rows = slice(150 * i, 150 * (i + 1))
        if i == 2:  # in-memory and dask batches mix freely in one stream
            streamed.partial_fit(X[rows], sample_weight=w[rows])
        else:
            streamed.partial_fit(block, sample_weight=wd.blocks[i])
        expected.partial_fit(X[rows], sample_weight=w[rows])
    assert_same_state(streamed, expected)


def test_nan_counts_per_feature():
    X = _data(seed=8)
    X[:, 2] = np.nan  # a feature that never has a value
    got = BatchNormScaler().fit(da.from_array(X, chunks=(97, 4)))
    expected = BatchNormScaler().fit(X)
    assert_same_state(got, expected)
    assert isinstance(got.n_samples_seen_, np.ndarray)
    assert got.n_samples_seen_[2] == 0
    assert (got.moving_mean_[2], got.moving_var_[2]) == (0.0, 1.0)


def test_unknown_chunk_sizes_and_empty_blocks():
    X = _data(seed=9)
    Xd = da.from_array(X, chunks=(100, 4))
    keep = np.ones(len(X), dtype=bool)
    keep[100:200] = False  # block 1 becomes empty
    keep[::5] = False
    Xu = Xd[da.from_array(keep, chunks=100)]
    assert np.isnan(Xu.shape[0])
    w = _weights(len(X))[keep]
    for batch_size in (None, 33):
        got = BatchNormScaler(batch_size=batch_size).fit(Xu, sample_weight=w)
        assert_same_state(
            got, BatchNormScaler(batch_size=batch_size).fit(X[keep], sample_weight=w)
        )


def test_constant_and_large_offset_features():
    rng = np.random.default_rng(10)
    X = np.column_stack([np.full(5000, 7.25), 1e9 + rng.normal(size=5000)])
    got = BatchNormScaler(epsilon=0.0).fit(da.from_array(X, chunks=(333, 2)))
    assert got.moving_var_[0] == 0.0  # constant: exactly 0, as in memory
    np.testing.assert_allclose(got.moving_var_[1], X[:, 1].var(), rtol=1e-9)
    assert_same_state(got, BatchNormScaler(epsilon=0.0).fit(X))


def test_float32_and_integer_data():
    X32 = _data(seed=11, dtype=np.float32)
    got = BatchNormScaler().fit(da.from_array(X32, chunks=(128, 4)))
    assert_same_state(got, BatchNormScaler().fit(X32))
    Xi = np.random.default_rng(12).integers(-50, 50, size=(300, 3))
    got = BatchNormScaler(batch_size=40).fit(da.from_array(Xi, chunks=(64, 3)))
    assert_same_state(got, BatchNormScaler(batch_size=40).fit(Xi))


# -- weights ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_weight",
    [
        pytest.param(lambda w, chunks: w, id="numpy"),
        pytest.param(lambda w, chunks: w.tolist(), id="list"),
        pytest.param(lambda w, chunks: da.from_array(w, chunks=(chunks,)), id="aligned"),
        pytest.param(lambda w, chunks: da.from_array(w, chunks=53), id="misaligned"),
    ],
)
def test_weight_containers(make_weight):
    X, w = _data(seed=13), _weights(600, seed=14)
    chunks = (50, 250, 300)
    Xd = da.from_array(X, chunks=(chunks, 4))
    for batch_size in (None, 64):
        got = BatchNormScaler(batch_size=batch_size).fit(Xd, sample_weight=make_weight(w, chunks))
        assert_same_state(got, BatchNormScaler(batch_size=batch_size).fit(X, sample_weight=w))


def test_scalar_weight_and_dask_weight_for_in_memory_X():
    X = _data(seed=15)
    got = BatchNormScaler().fit(da.from_array(X, chunks=100), sample_weight=2.5)
    assert_same_state(got, BatchNormScaler().fit(X, sample_weight=2.5))
    w = _weights(600)
    got = BatchNormScaler().partial_fit(X, sample_weight=da.from_array(w, chunks=100))
    assert_same_state(got, BatchNormScaler().partial_fit(X, sample_weight=w))


# -- DataFrames -------------------------------------------------------------------------


def _frame(X, columns="abcd"):
    return pd.DataFrame(X, columns=list(columns[: X.shape[1]]))


@pytest.mark.parametrize("batch_size", [None, 45])
def test_dataframe_fit_transform_inverse(scheduler, batch_size):
    X, w = _data(seed=16), _weights(600, seed=17)
    pdf = _frame(X)
    ddf = dd.from_pandas(pdf, npartitions=4)
    weights = dd.from_pandas(pd.Series(w), npartitions=4)  # partitions line up with ddf's

    got = BatchNormScaler(batch_size=batch_size).fit(ddf, sample_weight=weights)
    expected = BatchNormScaler(batch_size=batch_size).fit(pdf, sample_weight=w)
    assert_same_state(got, expected)
    np.testing.assert_array_equal(got.feature_names_in_, ["a", "b", "c", "d"])

    out = got.transform(ddf)
    assert isinstance(out, dd.DataFrame)
    assert list(out.columns) == ["a", "b", "c", "d"]
    assert (out.dtypes == np.float64).all()
    computed = out.compute()
    pd.testing.assert_index_equal(computed.index, pdf.index)
    # The same kernel as in memory, bit for bit, on the same statistics ...
    np.testing.assert_array_equal(computed.to_numpy(), got.transform(pdf))
    # ... which equal the in-memory ones to rounding (x - mean cancels).
    np.testing.assert_allclose(computed.to_numpy(), expected.transform(pdf), rtol=0, atol=1e-12)
    back = got.inverse_transform(out)
    assert isinstance(back, dd.DataFrame)
    np.testing.assert_allclose(back.compute().to_numpy(), X, rtol=1e-9)


def test_dataframe_dtypes():
    rng = np.random.default_rng(18)
    pdf = pd.DataFrame(
        {
            "f32": rng.normal(size=200).astype(np.float32),
            "i64": rng.integers(0, 9, 200),
            "flag": rng.random(200) < 0.5,
            "nullable": pd.array([1.5, None, 3.0, 4.5] * 50, dtype="Float64"),
        }
    )
    ddf = dd.from_pandas(pdf, npartitions=3)
    got = BatchNormScaler().fit(ddf)
    assert_same_state(got, BatchNormScaler().fit(pdf))
    assert got.transform(ddf).compute().dtypes.eq(np.float64).all()
    # All-float32 frames stay float32.
    f32 = pdf[["f32"]].assign(g=np.float32(2.0) * pdf["f32"])
    d32 = dd.from_pandas(f32, npartitions=2)
    s32 = BatchNormScaler().fit(d32)
    assert_same_state(s32, BatchNormScaler().fit(f32))
    out = s32.transform(d32)
    assert (out.dtypes == np.float32).all()
    assert out.compute().to_numpy().dtype == np.float32
    np.testing.assert_array_equal(out.compute().to_numpy(), s32.transform(f32))


def test_dataframe_names_checked_on_later_calls():
    pdf = _frame(_data(seed=19))
    scaler = BatchNormScaler().fit(dd.from_pandas(pdf, npartitions=2))
    renamed = dd.from_pandas(pdf.rename(columns={"a": "z"}), npartitions=2)
    before = scaler.__getstate__()
    with pytest.raises(ValueError, match="feature names"):
        scaler.partial_fit(renamed)
    _assert_unchanged(scaler, before)
    with pytest.raises(ValueError, match="feature names"):
        scaler.transform(renamed)
    # Fitted on names, given an array: warned, as in memory.
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        scaler.transform(da.from_array(pdf.to_numpy(), chunks=100))


def test_set_output():
    pdf = _frame(_data(seed=20))
    ddf = dd.from_pandas(pdf, npartitions=3)
    scaler = BatchNormScaler().fit(ddf)
    assert isinstance(scaler.transform(ddf), dd.DataFrame)  # default: lazy
    scaler.set_output(transform="pandas")  # an in-memory container was asked for
    out = scaler.transform(ddf)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(pdf.columns)
    np.testing.assert_allclose(out.to_numpy(), scaler.transform(pdf).to_numpy(), rtol=RTOL)
    arr = scaler.fit_transform(da.from_array(pdf.to_numpy(), chunks=100))
    assert isinstance(arr, pd.DataFrame)


# -- transform ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_transform_is_an_array_with_the_same_chunks(scheduler, dtype):
    X = _data(seed=21, nan=False)
    X = (X * 10).astype(dtype) if dtype == np.int32 else X.astype(dtype)
    X[3, 0] = np.nan if dtype != np.int32 else X[3, 0]
    Xd = da.from_array(X, chunks=((100, 200, 300), (3, 1)))
    scaler = BatchNormScaler(gamma=[1.0, 2.0, 0.5, 3.0], beta=0.25).fit(Xd)
    out = scaler.transform(Xd)
    assert isinstance(out, da.Array)
    assert out.chunks == Xd.chunks
    expected_dtype = np.float32 if dtype == np.float32 else np.float64
    assert out.dtype == expected_dtype
    computed = out.compute()
    assert computed.dtype == expected_dtype
    np.testing.assert_array_equal(computed, scaler.transform(X))  # the same kernel
    back = scaler.inverse_transform(out)
    assert back.chunks == Xd.chunks
    np.testing.assert_array_equal(back.compute(), scaler.inverse_transform(computed))
    # transform does not write into the blocks it reads.
    source = da.from_array(X, chunks=100)
    scaler.transform(source).compute()
    np.testing.assert_array_equal(source.compute(), X)


def test_transform_is_lazy_and_snapshots_the_statistics():
    X = _data(seed=22, nan=False)
    calls = []
    lock = threading.Lock()

    def counted(block):
        with lock:
            calls.append(block.shape)
        return block

    def exploding(block):
        raise AssertionError("a block was computed")

    scaler = BatchNormScaler().fit(X)
    Xd = da.from_array(X, chunks=100)
    counted_X = Xd.map_blocks(counted, meta=np.empty((0, 0)))
    calls.clear()  # (in case dask probed the function on empty metadata)
    out = scaler.transform(counted_X)
    back = scaler.inverse_transform(counted_X)
    pdf = _frame(X)
    frame = (
        BatchNormScaler()
        .fit(pdf)
        .transform(dd.from_pandas(pdf, npartitions=2).map_partitions(exploding, meta=pdf.iloc[:0]))
    )
    assert calls == []  # building the graphs computed nothing
    assert isinstance(frame, dd.DataFrame)
    with pytest.raises(AssertionError, match="a block was computed"):
        scaler.transform(Xd.map_blocks(exploding, meta=np.empty((0, 0)))).compute()

    expected, expected_back = scaler.transform(X), scaler.inverse_transform(X)
    scaler.partial_fit(X + 100.0)  # later fitting does not change a result already made
    np.testing.assert_array_equal(out.compute(), expected)
    assert len(calls) == Xd.npartitions
    np.testing.assert_array_equal(back.compute(), expected_back)


# -- errors and state ------------------------------------------------------------------


def _assert_unchanged(scaler, before):
    assert scaler.__getstate__().keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(scaler.__getstate__()[key], value)
        else:
            assert scaler.__getstate__()[key] == value, key


def test_infinity_refused_on_the_workers_state_unchanged(scheduler):
    X = _data(seed=23)
    pdf = _frame(X)
    scaler = BatchNormScaler().fit(dd.from_pandas(pdf, npartitions=2))
    before = scaler.__getstate__()
    bad = pdf.copy()
    bad.iloc[450, 2] = -np.inf
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \['c'\]"):
        scaler.partial_fit(dd.from_pandas(bad, npartitions=2))
    _assert_unchanged(scaler, before)
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \['c'\]"):
        BatchNormScaler(batch_size=10).fit(dd.from_pandas(bad, npartitions=3))

    # Every column holding +/-inf is named, whichever block it is in.
    two = X.copy()
    two[5, 0], two[590, 2] = np.inf, -np.inf
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \[0, 2\]"):
        BatchNormScaler().fit(da.from_array(two, chunks=150))

    Xbad = X.copy()
    Xbad[599, 3] = np.inf
    arr = da.from_array(Xbad, chunks=((300, 300), (2, 2)))
    plain = BatchNormScaler().fit(X)
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \[3\]"):
        plain.partial_fit(arr)
    lazy = plain.transform(arr)  # found when computed, not before
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) \[3\]"):
        lazy.compute()


@pytest.mark.parametrize(
    "bad_weight, match",
    [
        (np.nan, "NaN or infinity"),
        (-1.0, "Negative values in data passed to sample_weight"),
    ],
)
def test_bad_weights_refused_state_unchanged(scheduler, bad_weight, match):
    X, w = _data(seed=24), _weights(600)
    w[500] = bad_weight
    scaler = BatchNormScaler().partial_fit(X[:100])
    before = scaler.__getstate__()
    for weight in (da.from_array(w, chunks=200), w):
        with pytest.raises(ValueError, match=match):
            scaler.partial_fit(da.from_array(X, chunks=150), sample_weight=weight)
        _assert_unchanged(scaler, before)
    with pytest.raises(ValueError, match=match):
        BatchNormScaler(batch_size=9).fit(da.from_array(X, chunks=150), sample_weight=w)


def test_weight_shape_errors():
    X = _data(seed=25)
    Xd = da.from_array(X, chunks=150)
    with pytest.raises(ValueError, match=r"sample_weight has shape \(599,\)"):
        BatchNormScaler().fit(Xd, sample_weight=da.ones(599, chunks=150))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(599,\)"):
        BatchNormScaler().fit(Xd, sample_weight=np.ones(599))
    with pytest.raises(ValueError, match="1-d"):
        BatchNormScaler().fit(Xd, sample_weight=da.ones((600, 1), chunks=150))
    with pytest.raises(ValueError, match="at least one non-zero"):
        BatchNormScaler().fit(Xd, sample_weight=da.zeros(600, chunks=150))
    # All-zero weights are a batch that updates nothing, as in memory.
    zero = BatchNormScaler().partial_fit(Xd, sample_weight=da.zeros(600, chunks=150))
    assert_same_state(zero, BatchNormScaler().partial_fit(X, sample_weight=np.zeros(600)))
    # Blocks of unknown size that do not line up are named.
    ddf = dd.from_pandas(_frame(X), npartitions=3)
    skewed = dd.from_pandas(pd.Series(np.ones(600)), npartitions=3).repartition(
        divisions=[0, 10, 20, 599]
    )
    with pytest.raises(ValueError, match="same row chunks"):
        BatchNormScaler().fit(ddf, sample_weight=skewed)


def test_input_errors():
    X = _data(seed=26)
    Xd = da.from_array(X, chunks=150)
    scaler = BatchNormScaler().fit(Xd)
    before = scaler.__getstate__()
    with pytest.raises(ValueError, match="expecting 4 features"):
        scaler.partial_fit(Xd[:, :3])
    _assert_unchanged(scaler, before)
    with pytest.raises(ValueError, match="expecting 4 features"):
        scaler.transform(Xd[:, :3])
    with pytest.raises(ValueError, match="Expected a 2D dask array"):
        BatchNormScaler().fit(Xd[:, 0])
    with pytest.raises(ValueError, match="Expected a 2D dask collection"):
        BatchNormScaler().fit(dd.from_pandas(_frame(X), npartitions=2)["a"])
    with pytest.raises(ValueError, match="0 sample"):
        BatchNormScaler().fit(Xd[:0])
    with pytest.raises(ValueError, match="0 feature"):
        BatchNormScaler().fit(Xd[:, :0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        BatchNormScaler().fit(Xd.astype(np.complex128))
    with pytest.raises(ValueError, match="needs numeric data"):
        BatchNormScaler().fit(da.from_array(np.array([["a", "b"]] * 4), chunks=2))
    strings = dd.from_pandas(_frame(X).assign(e="text"), npartitions=2)
    with pytest.raises(ValueError, match=r"column\(s\) \['e'\] are not numeric"):
        BatchNormScaler().fit(strings)
    sparse = Xd.map_blocks(sp.csr_matrix, meta=sp.csr_matrix((0, 0)))
    with pytest.raises(TypeError, match="sparse blocks"):
        BatchNormScaler(with_mean=False).fit(sparse)
    with pytest.raises(TypeError, match="dask Arrays and DataFrames"):
        BatchNormScaler().fit(dask.delayed(X))
    # A parameter made invalid mid-stream is refused before the data is read.
    scaler.momentum = 2.0
    with pytest.raises(ValueError, match="momentum"):
        scaler.partial_fit(Xd)
    scaler.momentum = 0.99
    _assert_unchanged(scaler, before)


def test_missing_dask_names_the_extra():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "from skbn import BatchNormScaler\n"
        "Fake = type('Array', (), {'__module__': 'dask.array.core'})\n"
        "try:\n"
        "    BatchNormScaler().fit(Fake())\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert 'pip install "skbn[dask]"' in result.stdout
