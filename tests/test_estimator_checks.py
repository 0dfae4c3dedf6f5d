"""scikit-learn's own estimator checks, for the configurations of SPEC section 7.

The Array API checks run for every namespace and device present on the machine
(NumPy, array_api_strict and PyTorch on the CPU in CI; CUDA where a GPU is).
scikit-learn would *skip* the checks of absent ones (CuPy, dpnp, CUDA, MPS,
XPU); this suite does not collect them, so a run has no skipped test and the
list of what ran is plain from the test ids.
"""

from functools import partial
from unittest import SkipTest

import pytest
from sklearn.utils._testing import _array_api_for_tests
from sklearn.utils.estimator_checks import estimator_checks_generator

from skbn import BatchNormScaler

CONFIGURATIONS = [
    BatchNormScaler(),
    BatchNormScaler(momentum=None, unbiased=True),
    BatchNormScaler(init="keras"),
    BatchNormScaler(with_mean=False),
    BatchNormScaler(batch_size=7),
    BatchNormScaler(center=False, scale=False),
]


def expected_failed_checks(estimator):
    if estimator.batch_size is not None:
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "premise false: repeating a row shifts every later row into another "
                "mini-batch of batch_size rows, so the batches (and thus the moving "
                "statistics) differ from those of the weighted data"
            ),
        }
    return {}


def _available(namespace, device=None, dtype=None) -> bool:
    try:
        _array_api_for_tests(namespace, device, dtype)
    except SkipTest:
        return False
    return True


def _runs_here(check) -> bool:
    """False for an Array API check whose namespace or device is absent."""
    keywords = check.keywords if isinstance(check, partial) else {}
    if "array_namespace" in keywords:
        return _available(
            keywords["array_namespace"], keywords.get("device_name"), keywords.get("dtype_name")
        )
    pairs = [v for k, v in keywords.items() if k.endswith("ns_and_device")]
    return all(_available(pair.xp, pair.device) for pair in pairs)


def _checks():
    for configuration in CONFIGURATIONS:
        for item in estimator_checks_generator(
            configuration,
            legacy=True,
            expected_failed_checks=expected_failed_checks(configuration),
            mark="xfail",
            xfail_strict=True,
        ):
            # an expected failure comes as a pytest.param, the rest as a pair
            estimator, check = item.values if hasattr(item, "values") else item
            if _runs_here(check):
                yield item if hasattr(item, "values") else pytest.param(estimator, check)


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
