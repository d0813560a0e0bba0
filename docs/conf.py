"""Sphinx configuration of the pcrsolve documentation (``make docs``).

Builds offline with warnings as errors. Optional switches (environment variables):

- ``PCRSOLVE_DOCS_RUN_EXAMPLES=1``: run the gallery examples (with ``PCRSOLVE_EXAMPLE_QUICK=1``)
  and show their output and plots; by default the examples are rendered without running them.
- ``PCRSOLVE_DOCS_INTERSPHINX=1``: link NumPy, SciPy and CuPy names to their documentation
  (needs the network to fetch the inventories).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pcrsolve  # noqa: E402

project = "pcrsolve"
author = "pcrsolve developers"
copyright = "pcrsolve developers"
release = pcrsolve.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]

exclude_patterns = ["_build", "**/*.inc", "auto_examples/*.ipynb", "auto_examples/*.py", "_gallery_src"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"pcrsolve {release}"
default_role = "code"

# The API pages list each name explicitly; autosummary makes their tables, no stub files.
autosummary_generate = False
autodoc_typehints = "none"
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# MathJax is loaded from a CDN by the browser; nothing is fetched at build time.
mathjax3_config = {"tex": {"macros": {"R": r"\mathbb{R}"}}}

if os.environ.get("PCRSOLVE_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "cupy": ("https://docs.cupy.dev/en/stable/", None),
    }
    intersphinx_timeout = 10

# ----------------------------------------------------------------------- gallery
#
# examples/plot_*.py are rendered by sphinx-gallery into docs/auto_examples. They run only when
# PCRSOLVE_DOCS_RUN_EXAMPLES=1 (then with PCRSOLVE_EXAMPLE_QUICK=1, so `make docs` stays short);
# otherwise their code and text are shown without output.

EXAMPLES = ROOT / "examples"
_HEADERS = ("GALLERY_HEADER.rst", "GALLERY_HEADER.txt", "README.rst", "README.txt")
has_examples = EXAMPLES.is_dir() and any(EXAMPLES.glob("plot_*.py"))

if has_examples:
    extensions.append("sphinx_gallery.gen_gallery")
    gallery_src = EXAMPLES
    if not any((EXAMPLES / h).is_file() for h in _HEADERS):
        # sphinx-gallery needs a header file; use ours with a copy of the examples.
        gallery_src = HERE / "_build" / "gallery_src"
        shutil.rmtree(gallery_src, ignore_errors=True)
        gallery_src.mkdir(parents=True)
        for f in EXAMPLES.glob("plot_*.py"):
            shutil.copy2(f, gallery_src / f.name)
        shutil.copy2(HERE / "_gallery_header.txt", gallery_src / "GALLERY_HEADER.rst")
    run_examples = os.environ.get("PCRSOLVE_DOCS_RUN_EXAMPLES") == "1"
    if run_examples:
        os.environ.setdefault("PCRSOLVE_EXAMPLE_QUICK", "1")
    sphinx_gallery_conf = {
        "examples_dirs": os.path.relpath(gallery_src, HERE),
        "gallery_dirs": "auto_examples",
        "filename_pattern": r"/plot_" if run_examples else r"^$",
        "plot_gallery": "True" if run_examples else "False",
        "download_all_examples": False,
        "remove_config_comments": True,
        "within_subsection_order": "FileNameSortKey",
        "abort_on_example_error": True,
        "image_scrapers": ("matplotlib",),
        "matplotlib_animations": False,
        "show_memory": False,
    }
    tags.add("gallery")  # noqa: F821 (Sphinx injects `tags` into conf.py)
else:
    # index.rst lists the gallery inside `.. only:: gallery`; without examples that entry is dropped.
    suppress_warnings = ["toc.not_readable"]


# ----------------------------------------------------------------------- shapes in type lines
#
# Docstrings write shapes as in the design, ``(n_steps, *batch, m)``. Outside inline literals a
# lone ``*batch`` would open reStructuredText emphasis; escape it before numpydoc renders.

_LITERAL = re.compile(r"(``.*?``)")
_STAR = re.compile(r"(?<![\\*\w])\*(?=[A-Za-z_]\w*[,)\]\s:]|[A-Za-z_]\w*$)")


def _escape_star_shapes(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if "*" in line:
            parts = _LITERAL.split(line)
            lines[i] = "".join(p if p.startswith("``") else _STAR.sub(r"\\*", p) for p in parts)


def _first_sentence(doc, settings):
    """The first sentence of a docstring, never cut inside an inline literal.

    ``sphinx.ext.autosummary.extract_summary`` splits at the first ". ", also inside
    ````k = 0 .. n-1````, which leaves an unclosed literal in the summary table.
    """
    summary = _autosummary_extract(doc, settings)
    if summary.count("``") % 2 == 0:
        return summary
    stanza = []
    for line in doc:
        if not line.strip():
            if stanza:
                break
            continue
        stanza.append(line.strip())
    text, out = " ".join(stanza), []
    for part in _LITERAL.split(text):
        m = None if part.startswith("``") else re.search(r"\.(\s|$)", part)
        if m:
            out.append(part[: m.start() + 1])
            break
        out.append(part)
    return "".join(out)


from sphinx.ext import autosummary as _autosummary  # noqa: E402

_autosummary_extract = _autosummary.extract_summary
_autosummary.extract_summary = _first_sentence


def setup(app):
    app.connect("autodoc-process-docstring", _escape_star_shapes, priority=400)
