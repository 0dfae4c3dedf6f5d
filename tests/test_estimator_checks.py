"""scikit-learn's own estimator checks, for every configuration of the conformance list.

The Array API checks run for every namespace and device present on the machine
(NumPy, array_api_strict and PyTorch on the CPU in CI; CUDA where a GPU is).
scikit-learn would *skip* the checks of absent ones (CuPy, dpnp, CUDA, MPS,
XPU); this suite does not collect them, so a run has no skipped test and the
list of what ran is plain from the test ids.

The same code runs on every scikit-learn from the floor (1.6) to the newest:
it takes the checks from ``estimator_checks_generator`` (new in 1.6) and marks
the expected failures itself, strict (``xfail_strict`` is not in 1.6).
"""

from functools import partial
from inspect import signature
from unittest import SkipTest

import pytest
from sklearn.utils import get_tags
from sklearn.utils._testing import _array_api_for_tests
from sklearn.utils.estimator_checks import _check_name, estimator_checks_generator

from skbn import BatchNormScaler

CONFIGURATIONS = [
    BatchNormScaler(),
    BatchNormScaler(momentum=None, unbiased=True),
    BatchNormScaler(momentum="pooled"),
    BatchNormScaler(init="keras"),
    BatchNormScaler(with_mean=False),
    BatchNormScaler(with_std=False),
    BatchNormScaler(batch_size=7),
    BatchNormScaler(center=False, scale=False),
]


def expected_failed_checks(estimator):
    expected = {}
    if estimator.batch_size is not None:
        expected["check_sample_weight_equivalence_on_dense_data"] = (
            "premise false: repeating a row shifts every later row into another "
            "mini-batch of batch_size rows, so the batches (and thus the moving "
            "statistics) differ from those of the weighted data"
        )
    if not get_tags(estimator).input_tags.sparse:
        # Yielded only by scikit-learn 1.6; 1.7 and later yield it only where
        # the tags accept sparse input.
        expected["check_sample_weight_equivalence_on_sparse_data"] = (
            "scikit-learn 1.6 fits sparse X here although the tags say this "
            "configuration refuses it (scikit-learn issue #30139): centring sparse X "
            "is refused with a ValueError, as documented"
        )
    return expected


def _available(namespace, device=None, dtype=None) -> bool:
    # scikit-learn 1.6 takes (namespace, device); later releases also take a dtype name
    args = (namespace, device, dtype)[: len(signature(_array_api_for_tests).parameters)]
    try:
        _array_api_for_tests(*args)
    except SkipTest:
        return False
    return True


def _runs_here(check) -> bool:
    """False for an Array API check whose namespace or device is absent."""
    keywords = check.keywords if isinstance(check, partial) else {}
    if "array_namespace" in keywords:
        return _available(
            keywords["array_namespace"],
            keywords.get("device_name", keywords.get("device")),  # "device" in 1.6
            keywords.get("dtype_name"),
        )
    pairs = [v for k, v in keywords.items() if k.endswith("ns_and_device")]
    return all(_available(pair.xp, pair.device) for pair in pairs)


def _checks():
    for configuration in CONFIGURATIONS:
        expected = expected_failed_checks(configuration)
        for estimator, check in estimator_checks_generator(configuration, legacy=True):
            if not _runs_here(check):
                continue
            reason = expected.get(_check_name(check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(estimator, check, marks=marks)


def _ids(obj):
    if isinstance(obj, BatchNormScaler):
        changed = {k: v for k, v in obj.get_params().items() if k in obj.__dict__}
        defaults = BatchNormScaler().get_params()
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items() if v != defaults[k])
        return f"BatchNormScaler({args})"
    name = getattr(obj, "func", obj).__name__
    keywords = getattr(obj, "keywords", {})
    return name + (f"({', '.join(f'{k}={v}' for k, v in keywords.items())})" if keywords else "")


@pytest.mark.parametrize("estimator, check", list(_checks()), ids=_ids)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
