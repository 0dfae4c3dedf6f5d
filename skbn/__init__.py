"""skbn: batch normalization's moving statistics as a scikit-learn transformer."""

from ._scaler import BatchNormScaler

__version__ = "0.1.0"

__all__ = ["BatchNormScaler", "__version__"]
