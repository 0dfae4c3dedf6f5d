"""``python -m skbn``: the skbn command line (see :mod:`skbn.cli`)."""

import sys

from skbn.cli import main

if __name__ == "__main__":
    sys.exit(main())
