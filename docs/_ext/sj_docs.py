"""Sphinx extension of the sj-plugins docs: the parts of the pages that are generated at build time.

* ``{sj-configs} sj_calib``: a table of the plugin's packaged configs (``<package>/configs/*.yaml``), each
  loaded through the plugin's recipe (the values the command line would use) with its first comment line.
* ``{sj-api} sj_calib.recipe``: autodoc entries for every name in the module's ``__all__`` (for a submodule,
  the names its parent package does not export already, so that nothing is documented twice).
* The stored notebooks ``examples/*.ipynb`` are copied to ``docs/notebooks/`` (ignored by git) before the
  build reads its sources: Sphinx reads pages only from under ``docs/``.
* Every results table in the pages and the README is compared with its results file
  (``scripts/docs_tables.py``); a difference is a warning, so ``-W`` stops the build.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shutil
from importlib import resources
from pathlib import Path

from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]

# Columns of each plugin's config table: (header, dotted path into the loaded config).
CONFIG_COLUMNS = {
    "sj_calib": [
        ("data", "data.name"),
        ("model", "model.name"),
        ("L", "model.kwargs.L"),
        ("T", "calib.T"),
        ("rho", "calib.rho"),
        ("epochs", "train.epochs"),
        ("batch", "train.batch_size"),
        ("lr", "train.lr"),
    ],
    "sj_transfer": [
        ("static → event", "data.static+data.event"),
        ("event ratio", "data.train_ratio"),
        ("T", "data.T"),
        ("size", "data.size"),
        ("alpha", "method.alpha"),
        ("epochs", "train.epochs"),
        ("batch", "train.batch_size"),
        ("lr", "train.lr"),
    ],
    "sj_bkd": [
        ("data", "data.name"),
        ("student", "student.name"),
        ("teacher", "teacher.name"),
        ("mode", "distill.mode"),
        ("T", "data.T"),
        ("epochs", "train.epochs"),
        ("batch", "train.batch_size"),
        ("lr", "train.lr"),
    ],
}


def _get(cfg, path: str):
    if "+" in path:
        return " → ".join(str(_get(cfg, p)) for p in path.split("+"))
    value = cfg
    for part in path.split("."):
        value = value.get(part, "") if isinstance(value, dict) else getattr(value, part, "")
    return value


def _cell(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)  # no spaces: a narrow column
    return "" if value is None else str(value).replace("|", "\\|")


def config_rows(package: str) -> tuple[list[str], list[list[str]]]:
    """Header and one row per packaged config of ``package``, loaded through the plugin's recipe."""
    from sj_common.config import available_configs

    recipe = importlib.import_module(f"{package}.recipe").RECIPE
    columns = CONFIG_COLUMNS[package]
    rows = []
    for name in available_configs(package):
        text = (resources.files(package) / "configs" / f"{name}.yaml").read_text()
        first = next((ln[1:].strip() for ln in text.splitlines() if ln.startswith("#")), "")
        cfg = recipe.config(name)
        rows.append([f"`{name}`", *(_cell(_get(cfg, p)) for _, p in columns), _cell(first)])
    return ["config", *(h for h, _ in columns), "what it is (first comment line)"], rows


class ConfigTable(SphinxDirective):
    """``{sj-configs} PACKAGE``: the table of the package's configs."""

    required_arguments = 1

    def run(self):
        package = self.arguments[0]
        if package not in CONFIG_COLUMNS:
            raise self.error(f"sj-configs: expected one of {sorted(CONFIG_COLUMNS)}, got {package!r}")
        header, rows = config_rows(package)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return self.parse_text_to_nodes("\n".join(lines))


def api_names(module_name: str) -> list[str]:
    """The names ``{sj-api} module_name`` documents: its ``__all__`` less what its parent package exports."""
    module = importlib.import_module(module_name)
    names = list(getattr(module, "__all__", []))
    parent_name = module_name.rpartition(".")[0]
    if parent_name:
        parent = importlib.import_module(parent_name)
        exported = set(getattr(parent, "__all__", []))
        names = [n for n in names if n not in exported or getattr(parent, n, None) is not getattr(module, n)]
    return names


def _value(obj, limit: int = 600) -> str:
    """A constant as a reader wants to see it: a mapping's keys, a sequence's items, cut at ``limit``."""
    if isinstance(obj, dict):
        text = "keys: " + ", ".join(str(k) for k in obj)
    else:
        text = repr(obj)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


class ApiList(SphinxDirective):
    """``{sj-api} MODULE``: autodoc entries for the module's public names (see :func:`api_names`)."""

    required_arguments = 1
    option_spec = {"no-members": directives.flag}

    def run(self):
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        rst = []
        for name in api_names(module_name):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                rst.append(f".. autoclass:: {module_name}.{name}")
                if "no-members" not in self.options:
                    rst.append("   :members:")
            elif callable(obj):
                rst.append(f".. autofunction:: {module_name}.{name}")
            else:  # a constant: its type and value (autodoc would show the docstring of its type)
                rst += [
                    f".. py:data:: {name}",
                    f"   :module: {module_name}",
                    f"   :type: {type(obj).__name__}",
                    "",
                ]
                rst += ["   ::", "", *(f"      {line}" for line in _value(obj).splitlines()), ""]
            rst.append("")
        # autodoc writes reStructuredText: parse it as such, whatever the page's own markup
        return self.parse_text_to_nodes("```{eval-rst}\n" + "\n".join(rst) + "\n```")


_ITEM = re.compile(r"^(\s*)[-*] \S")


def loosen_lists(app, what, name, obj, options, lines: list[str]) -> None:
    """Docstrings here write Markdown-style lists (``why:`` then ``- item`` on the next line); reStructuredText
    wants a blank line before a list and after it. Insert those blank lines, and change nothing else."""
    out: list[str] = []
    item_indent = None  # indentation of the list being read, None outside a list
    for line in lines:
        m = _ITEM.match(line)
        indent = len(line) - len(line.lstrip())
        if m:
            if item_indent is None and out and out[-1].strip():
                out.append("")
            item_indent = len(m.group(1))
        elif item_indent is not None:
            if not line.strip():
                item_indent = None
            elif indent <= item_indent:  # the list ended without a blank line
                out.append("")
                item_indent = None
        out.append(line)
    lines[:] = out


def copy_notebooks(app, config) -> None:
    """``examples/*.ipynb`` -> ``docs/notebooks/`` (rewritten only when changed, so rebuilds stay incremental)."""
    dest = Path(app.srcdir) / "notebooks"
    dest.mkdir(exist_ok=True)
    for nb in sorted((ROOT / "examples").glob("*.ipynb")):
        target = dest / nb.name
        if not target.is_file() or target.read_bytes() != nb.read_bytes():
            shutil.copyfile(nb, target)


def check_tables(app) -> None:
    """Each results table in the pages and the README against its results file (scripts/docs_tables.py)."""
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "scripts" / "docs_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    for problem in tables.stale_blocks():
        logger.warning(f"{problem} (run: python scripts/docs_tables.py)")


def setup(app):
    app.add_directive("sj-configs", ConfigTable)
    app.add_directive("sj-api", ApiList)
    app.connect("autodoc-process-docstring", loosen_lists)
    app.connect("config-inited", copy_notebooks)
    app.connect("builder-inited", check_tables)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
