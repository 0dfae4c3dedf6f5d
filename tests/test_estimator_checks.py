"""scikit-learn's own estimator checks, for the configurations of SPEC section 7."""

from sklearn.utils.estimator_checks import parametrize_with_checks

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


@parametrize_with_checks(CONFIGURATIONS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
