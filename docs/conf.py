"""Sphinx configuration of the skbn documentation.

Build it with ``python -m sphinx -W -b html docs docs/_build/html`` (the ``docs``
extra installs what it needs). The build is offline: no intersphinx inventory is
fetched, and the few cross-references into scikit-learn's glossary are resolved
by :func:`_sklearn_glossary` below.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from docutils import nodes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the checkout, installed or not

import skbn  # noqa: E402

# -- project -----------------------------------------------------------------

project = "skbn"
author = "The skbn developers"
copyright = "The skbn developers"  # noqa: A001
release = skbn.__version__
version = ".".join(release.split(".")[:2])

# -- extensions --------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"

# Files that are not pages: READMEs of folders (notes for developers) and the
# build output.
exclude_patterns = ["_build", "README.md", "**/README.md", "Thumbs.db", ".DS_Store"]

# -- MyST (the Markdown pages) ----------------------------------------------

# Section anchors for the pages' "[section](#heading)" links, down to ###.
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc ----------------------------------------

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc "Parameters" sections say it all
autosummary_generate = False  # api.rst lists everything itself: no stub files
numpydoc_show_class_members = False  # api.rst's autosummary table does this
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery ----------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Only the plot_* scripts run during the build (in seconds, headless); the
    # other examples (they need torch, dask, downloads or minutes) are shown
    # as code.
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|/_",
    "download_all_examples": False,
    "remove_config_comments": True,
    # No docs/sg_execution_times.rst written into the source tree.
    "write_computation_times": False,
    # An example that raises fails the build.
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
}

# -- HTML ------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"skbn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    # The in-page table of contents ("On this page") on the right of every
    # page, two heading levels deep, so that no page has an empty navigation.
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    # Six sections in the top bar (the root toctree of index.md), no "More".
    "header_links_before_dropdown": 6,
    "navbar_align": "left",
}
# The left sidebar: the pages of the current section (hidden where a section
# has a single page), none on the front page.
html_sidebars = {"index": [], "**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["custom.css"]  # small fixes of the layout (gallery titles, tables)


# -- scikit-learn glossary references ----------------------------------------

SKLEARN_GLOSSARY = "https://scikit-learn.org/stable/glossary.html#term-"


def _sklearn_glossary(app, env, node, contnode):
    """Resolve ``:term:`fit``` and friends to scikit-learn's glossary.

    scikit-learn-style docstrings (ours included) use the ``:term:`` role for
    the words of scikit-learn's glossary, which this site does not have. Rather
    than fetch scikit-learn's intersphinx inventory (the build is offline) or
    silence the warning, point such a term at scikit-learn's glossary page.

    The methods inherited from scikit-learn's mixins (``set_output``,
    ``set_fit_request``, ...) also bring ``:ref:`` labels of scikit-learn's
    user guide: in those docstrings, and only there, an unknown label is shown
    as its plain text. A broken reference anywhere else still fails the build.
    """
    if node.get("refdomain") != "std":
        return None
    if node.get("reftype") == "term":
        target = node["reftarget"].strip().lower().replace(" ", "-")
        ref = nodes.reference("", "", internal=False, refuri=SKLEARN_GLOSSARY + target)
        ref += contnode
        return ref
    if node.get("reftype") == "ref" and "docstring of sklearn." in (node.source or ""):
        return contnode
    return None


# -- numpydoc types ending in "_" -------------------------------------------

# "name : type" lines of the numpydoc sections, and in the type an identifier
# ending in "_" (a fitted attribute, as in "shape (n_features_in_,)").
_PARAM_LINE = re.compile(r"^(\s*[*\w][\w, *]* : )(.+)$")
_TRAILING_UNDERSCORE = re.compile(r"\b([A-Za-z]\w*?)_(?=[^\w]|$)")


def _escape_type_underscores(app, what, name, obj, options, lines):
    """Escape a trailing "_" in the types of numpydoc parameter lists.

    numpydoc copies a parameter's type into the page as reST, where a word
    ending in "_" is a hyperlink reference: scikit-learn's usual
    ``shape (n_features_in_,)`` would fail with 'Unknown target name'. Run
    before numpydoc, this turns ``n_features_in_`` into ``n_features_in\\_``
    there, which reST shows as ``n_features_in_``. Types with roles or
    literals (backquotes) are left alone.
    """
    for i, line in enumerate(lines):
        match = _PARAM_LINE.match(line)
        if match and "`" not in match.group(2):
            escaped = _TRAILING_UNDERSCORE.sub(r"\1\\_", match.group(2))
            lines[i] = match.group(1) + escaped


# -- pages that may not exist yet -------------------------------------------

# Pages the section toctrees list that are written separately and may be absent
# from a checkout: a toctree entry for a missing page would fail ``-W``, so the
# line is dropped while the file does not exist (and listed as soon as it does).
OPTIONAL_PAGES = ("installation", "architecture", "spark")
# Reference pages of modules that may be absent likewise: page -> module path.
OPTIONAL_MODULE_PAGES = {"api_io": "skbn/io", "api_spark": "skbn/spark"}
_MISSING_MODULE_PAGES = {
    page for page, module in OPTIONAL_MODULE_PAGES.items() if not (ROOT / module).exists()
}
exclude_patterns += [f"{page}.rst" for page in _MISSING_MODULE_PAGES]


def _drop_missing_optional_pages(app, docname, source):
    here = Path(app.srcdir)
    missing = {
        name
        for name in OPTIONAL_PAGES
        if not any((here / f"{name}{suffix}").exists() for suffix in source_suffix)
    } | _MISSING_MODULE_PAGES
    if missing:
        lines = source[0].splitlines(keepends=True)
        source[0] = "".join(line for line in lines if not _names_missing(line, missing))


def _names_missing(line, missing):
    """A toctree entry, a one-line bullet or a table row that opens with a missing page.

    That is ``page``, ``* :doc:`page`...`` (reST) or ``| {doc}`page` |...``
    (a MyST table row).
    """
    text = line.strip()
    starts = ("* :doc:`{}`", "| {{doc}}`{}`")
    return text in missing or any(
        text.startswith(start.format(name)) for name in missing for start in starts
    )


def _reread_pages_listing_optional_ones(app, env, added, changed, removed):
    """Re-read the pages that list an optional page on every build.

    An incremental build would otherwise keep a toctree from before the page
    appeared (or went), and ``-W`` would fail on "not included in any toctree".
    """
    names = set(OPTIONAL_PAGES) | set(OPTIONAL_MODULE_PAGES)
    return [
        docname
        for docname in env.found_docs
        if any(
            line.strip() in names
            for line in Path(env.doc2path(docname)).read_text(encoding="utf-8").splitlines()
        )
    ]


def setup(app):
    app.connect("source-read", _drop_missing_optional_pages)
    app.connect("env-get-outdated", _reread_pages_listing_optional_ones)
    app.connect("missing-reference", _sklearn_glossary)
    # numpydoc listens with the default priority (500): go first.
    app.connect("autodoc-process-docstring", _escape_type_underscores, priority=400)
