"""The API reference documents every public name.

Each public module's ``__all__`` is compared with its page of the reference
(``docs/api*.rst``): every name must be documented by an autodoc (or ``data``)
directive, and listed in the page's autosummary table unless it is a constant
(a ``data`` directive: autosummary would show the docstring of ``int`` or
``str`` for it). The pages are parsed, not
built, so this runs in a second; ``sphinx -W`` (``.ci/run``) checks that the
directives render. A module that is not in this checkout (one still being
written) is left out, as the docs build leaves out its page (``docs/conf.py``).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# module -> its page of the reference
PAGES = {
    "skbn": "api.rst",
    "skbn.io": "api_io.rst",
    "skbn.onnx": "api_onnx.rst",
    "skbn.river": "api_river.rst",
    "skbn.spark": "api_spark.rst",
}
DATA = re.compile(r"^\.\. (?:autodata|data)::\s+(\S+)", re.MULTILINE)
DIRECTIVE = re.compile(
    r"^\.\. (?:autoclass|autofunction|autodata|autoexception|data|class|function)::\s+(\S+)",
    re.MULTILINE,
)
# The methods through which the integrations are reached (dask, interop, Flax).
ESTIMATOR_METHODS = (
    "fit",
    "partial_fit",
    "transform",
    "inverse_transform",
    "get_weights",
    "set_weights",
    "to_torch",
    "from_torch",
    "to_keras",
    "from_keras",
    "to_flax",
    "from_flax",
)


def autosummary_entries(text: str) -> set[str]:
    """The names listed in the page's ``.. autosummary::`` tables."""
    names = set()
    for block in re.findall(r"^\.\. autosummary::\n((?:[ \t]+.*\n|\n)+)", text, re.MULTILINE):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                names.add(line)
    return names


def in_checkout(module_name: str) -> bool:
    path = ROOT / module_name.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").exists()


@pytest.mark.parametrize("module_name", [name for name in PAGES if in_checkout(name)])
def test_every_public_name_is_in_the_reference(module_name):
    module = importlib.import_module(module_name)
    text = (DOCS / PAGES[module_name]).read_text(encoding="utf-8")
    listed = autosummary_entries(text)
    documented = {name.rsplit(".", 1)[-1] for name in DIRECTIVE.findall(text)}
    public = set(module.__all__)
    assert public, f"{module_name}.__all__ is empty"
    constants = {name.rsplit(".", 1)[-1] for name in DATA.findall(text)}
    unlisted = public - listed - constants
    assert unlisted == set(), f"not in the autosummary table of {PAGES[module_name]}"
    assert public - documented == set(), f"no autodoc directive in {PAGES[module_name]}"
    assert f".. currentmodule:: {module_name}\n" in text


def test_the_estimator_methods_are_in_the_reference():
    listed = autosummary_entries((DOCS / "api.rst").read_text(encoding="utf-8"))
    missing = {m for m in ESTIMATOR_METHODS if f"BatchNormScaler.{m}" not in listed}
    assert not missing


def test_every_reference_page_is_in_the_api_toctree():
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    toctree = re.search(r"^\.\. toctree::\n((?:[ \t]+.*\n|\n)+)", text, re.MULTILINE).group(1)
    for page in PAGES.values():
        if page != "api.rst":
            assert page.removesuffix(".rst") in toctree.split()
