"""skbn: batch normalization's moving statistics as a scikit-learn transformer."""

__version__ = "0.1.0"

from ._scaler import BatchNormScaler  # noqa: E402

__all__ = ["BatchNormScaler", "__version__"]
