"""Sphinx configuration of the sj-plugins documentation.

Build (warnings are errors, as in CI):

    python -m sphinx -W -b html docs docs/_build/html

Pages are Markdown (myst-parser), the API reference comes from the docstrings (autodoc + napoleon, Google
style), the notebooks in ``examples/`` are rendered from their stored outputs (myst-nb, never executed), and
``docs/_ext/sj_docs.py`` adds the generated parts: the config tables from the packaged YAMLs, the API lists from
each module's ``__all__``, and the check that every results table matches its results file.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "_ext"))
for pkg in ("sj_common", "sj_calib", "sj_transfer", "sj_bkd"):  # the source tree, installed or not
    sys.path.insert(0, str(ROOT / pkg / "src"))

project = "sj-plugins"
author = "sj-plugins maintainers"
copyright = "sj-plugins maintainers"
release = version = "0.1.0"

extensions = [
    "myst_nb",  # Markdown pages (myst-parser) and the stored notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sj_docs",
]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_ext",
    "demo",  # results files (JSON), read by scripts/docs_tables.py
    "calib_mnist5k",
    "transfer_study/results.md",  # the generated tables live in the pages; these stay the studies' records
    "transfer_confirm/results.md",
    "bkd_study/README_snippet.md",
    "bkd_study/table.md",
    "**/.ipynb_checkpoints",
]

# MyST: strict enough for -W (no unknown syntax passes), with the extensions the pages use
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Notebooks: shown with their stored outputs, never run during the build
nb_execution_mode = "off"
nb_merge_streams = True

# API reference
autodoc_default_options = {"members": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "furo"
html_title = "sj-plugins"
html_static_path: list[str] = []
