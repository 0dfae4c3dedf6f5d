"""Scale files: stream a CSV, Parquet, Arrow or NDJSON file through the scaler.

The file API behind ``skbn scale`` (see :doc:`/cli`):

* :func:`scale_file` scales the numeric columns of a file into another file,
  in two streaming passes (fit, then transform), memory flat in the file's
  length; by default with the exact statistics of the whole file
  (``momentum="pooled"``, what ``StandardScaler`` gives on the loaded file);
* :func:`fit_file` fits a :class:`~skbn.BatchNormScaler` on a file;
* :func:`load_scaler` and :func:`save_scaler` read and write model files
  (skops); :func:`read_model` reads one without loading it.

It needs the ``cli`` extra (``pip install "skbn[cli]"``: pyarrow, polars,
tqdm, skops) and imports each package only when a function needs it; the
default pooled path imports neither scikit-learn nor pandas.  Every problem
is raised as :class:`FileError`, one line with an exit ``status``.
"""

from ._atomic import Interrupted, signals_as_exceptions
from ._engine import DEFAULT_CHUNKSIZE, ScaleResult, fit_file, scale_file
from ._errors import FileError
from ._formats import INFER_ROWS
from ._model import TRUSTED_TYPE, ModelSummary, load_scaler, read_model, save_scaler

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "INFER_ROWS",
    "TRUSTED_TYPE",
    "FileError",
    "Interrupted",
    "ModelSummary",
    "ScaleResult",
    "fit_file",
    "load_scaler",
    "read_model",
    "save_scaler",
    "scale_file",
    "signals_as_exceptions",
]
