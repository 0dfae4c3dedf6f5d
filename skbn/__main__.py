"""``python -m skbn``: the skbn command line (see :mod:`skbn.cli`)."""

from skbn.cli import run

if __name__ == "__main__":
    run()
