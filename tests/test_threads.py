"""One scaler shared by threads: readers see a whole batch or none, refused
batches are invisible, writers are serialized, and saving touches nothing."""

import copy
import io
import pickle
import sys
import threading

import joblib
import numpy as np
import pytest
from sklearn.base import clone

from skbn import BatchNormScaler

A = np.array([[0.0, 10.0, -3.0], [2.0, 30.0, 5.0]])
B = np.array([[100.0, -1.0, 7.0], [140.0, 1.0, 9.0], [120.0, 0.0, 8.0]])
PROBE = np.linspace(-5, 5, 60).reshape(20, 3)


@pytest.fixture
def fast_switching():
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _run(writer, readers, n_readers=3, seconds=1.0):
    stop = threading.Event()
    errors = []

    def guard(func):
        def run():
            try:
                while not stop.is_set():
                    func()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                stop.set()

        return run

    threads = [threading.Thread(target=guard(writer))]
    threads += [threading.Thread(target=guard(readers)) for _ in range(n_readers)]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    return errors


def test_readers_never_see_a_torn_state(fast_switching):
    """With momentum=0 the state is one batch's statistics: a transform mixing
    the mean of A with the variance of B is an impossible output."""
    expected_a = BatchNormScaler(momentum=0.0).fit(A).transform(PROBE)
    expected_b = BatchNormScaler(momentum=0.0).fit(B).transform(PROBE)
    inverse = [
        BatchNormScaler(momentum=0.0).fit(batch).inverse_transform(expected_a) for batch in (A, B)
    ]
    scaler = BatchNormScaler(momentum=0.0).fit(A)
    flip = [A, B]
    seen = {"a": 0, "b": 0}

    def writer():
        flip.reverse()
        scaler.partial_fit(flip[0])

    def reader():
        out = scaler.transform(PROBE)
        if np.array_equal(out, expected_a):
            seen["a"] += 1
        elif np.array_equal(out, expected_b):
            seen["b"] += 1
        else:
            raise AssertionError("a transform saw parts of two batches")
        back = scaler.inverse_transform(expected_a)
        if not any(np.array_equal(back, known) for known in inverse):
            raise AssertionError("an inverse_transform saw parts of two batches")

    assert _run(writer, reader) == []
    assert seen["a"] and seen["b"]


def test_a_refused_batch_is_invisible_to_other_threads(fast_switching):
    expected = BatchNormScaler(momentum=0.0).fit(A).transform(PROBE)
    scaler = BatchNormScaler(momentum=0.0).fit(A)
    bad = A.copy()
    bad[1, 2] = np.inf
    refused = []

    def writer():
        try:
            scaler.partial_fit(bad)
        except ValueError:
            refused.append(1)
        scaler.partial_fit(A)

    def reader():
        np.testing.assert_array_equal(scaler.transform(PROBE), expected)

    assert _run(writer, reader) == []
    assert refused


def test_concurrent_partial_fit_calls_are_serialized(fast_switching):
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(3, 4)) for _ in range(400)]
    scaler = BatchNormScaler(momentum="pooled")
    chunks = [batches[i::8] for i in range(8)]

    def feed(mine):
        for batch in mine:
            scaler.partial_fit(batch)

    threads = [threading.Thread(target=feed, args=(mine,)) for mine in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert scaler.n_batches_seen_ == 400
    assert scaler.n_samples_seen_ == 1200
    whole = np.vstack(batches)
    np.testing.assert_allclose(scaler.mean_, whole.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scaler.var_, whole.var(axis=0), rtol=1e-12)


@pytest.mark.parametrize("save", ["pickle", "deepcopy", "joblib", "skops"])
def test_saving_leaves_the_live_object_unchanged(save):
    scaler = BatchNormScaler(momentum=0.9).fit(A)
    before = dict(vars(scaler))
    if save == "pickle":
        pickle.dumps(scaler)
    elif save == "deepcopy":
        copy.deepcopy(scaler)
    elif save == "joblib":
        joblib.dump(scaler, io.BytesIO())
    else:
        import skops.io

        skops.io.dumps(scaler)
    after = vars(scaler)
    assert after.keys() == before.keys()
    assert all(after[k] is v for k, v in before.items())


def test_the_writers_lock_is_not_fitted_state():
    scaler = BatchNormScaler().fit(A)
    assert not any(isinstance(v, type(threading.RLock())) for v in vars(scaler).values())
    assert "_lock" not in pickle.loads(pickle.dumps(scaler)).__dict__
    assert clone(scaler).get_params() == scaler.get_params()
    fitted = [k for k in vars(scaler) if k.endswith("_")]
    again = [k for k in vars(BatchNormScaler().fit(A)) if k.endswith("_")]
    assert fitted == again
