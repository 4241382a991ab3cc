"""The Sphinx site: the API pages document every name of every public module's ``__all__``, the config tables
list every packaged config, and the built pages render in a browser (headless Chromium, where installed).

The built site comes from ``$SJ_DOCS_HTML`` when set (``.ci/run`` builds it with ``-W`` first and sets it);
otherwise the module builds it once into a temporary folder.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("sj_common", "sj_calib", "sj_transfer", "sj_bkd")
sphinx = pytest.importorskip("sphinx", reason="the docs tools are not installed (requirements-dev.txt, docs)")


def public_names() -> dict[str, str]:
    """``{documented name: defining module}`` for every name in every public module's ``__all__``: a name is
    documented under the highest package that re-exports the same object (``sj_calib.convert``, not
    ``sj_calib.conversion.convert``)."""
    out = {}
    for pkg in PACKAGES:
        top = importlib.import_module(pkg)
        for name in [pkg, *(m.name for m in pkgutil.walk_packages(top.__path__, f"{pkg}."))]:
            module = importlib.import_module(name)
            for attr in getattr(module, "__all__", []):
                obj, owner = getattr(module, attr), name
                parent = owner.rpartition(".")[0]
                while parent:
                    p = importlib.import_module(parent)
                    if attr not in getattr(p, "__all__", []) or getattr(p, attr, None) is not obj:
                        break
                    owner, parent = parent, parent.rpartition(".")[0]
                out[f"{owner}.{attr}"] = name
    return out


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    given = os.environ.get("SJ_DOCS_HTML")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("docs_html")
    built = subprocess.run(  # -W as in .ci/run: a docstring that renders badly fails here too
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(DOCS), str(out)],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_api_pages_document_every_public_name(html):
    from sphinx.util.inventory import InventoryFile

    with open(html / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", lambda base, uri: uri)
    inv = getattr(inv, "data", inv)  # {type: {name: item}} (a dict since Sphinx 8.2)
    documented = {name for kind, entries in inv.items() if kind.startswith("py:") for name in entries}
    expected = public_names()
    assert len(expected) > 150
    missing = sorted(n for n in expected if n not in documented)
    assert missing == [], f"public names without an API entry: {missing}"
    pages = {
        name: (entry.uri if hasattr(entry, "uri") else entry[2]).split("#")[0]
        for kind, entries in inv.items()
        if kind.startswith("py:")
        for name, entry in entries.items()
    }
    assert pages["sj_calib.offset_spike_if"] == "api/sj_calib.html"
    assert pages["sj_common.data.MNIST5k"] == "api/sj_common.html"


def test_config_tables_list_every_packaged_config():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from sj_docs import config_rows
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from sj_common.config import available_configs

    for pkg in ("sj_calib", "sj_transfer", "sj_bkd"):
        header, rows = config_rows(pkg)
        assert [r[0] for r in rows] == [f"`{n}`" for n in available_configs(pkg)]
        assert all(len(r) == len(header) for r in rows)
    header, rows = config_rows("sj_calib")
    mnist = dict(zip(header, next(r for r in rows if r[0] == "`mnist5k`")))
    assert (mnist["L"], mnist["T"], mnist["rho"], mnist["epochs"]) == ("4", "1,2,4,8", "4", "10")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browse(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    exe = _chromium()
    profile = tmp_path / f"profile-{page.stem}-{len(list(tmp_path.iterdir()))}"
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(
    _chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)"
)
@pytest.mark.parametrize(
    ("page", "title", "known"),
    [
        ("index.html", "sj-plugins", "Getting started"),
        ("api/sj_calib.html", "sj_calib", "offset_spike_if"),
    ],
)
def test_built_pages_render_in_chromium(html, tmp_path, page, title, known):
    path = html / page
    dom = _browse(tmp_path, path, "--dump-dom").stdout
    head = re.search(r"<title>(.*?)</title>", dom, flags=re.S)
    assert head and title in head.group(1), head
    assert known in dom
    # the theme's stylesheet and navigation were applied (the DOM holds furo's sidebar)
    assert "sidebar-tree" in dom
    shot = tmp_path / f"{path.stem}.png"
    _browse(tmp_path, path, f"--screenshot={shot}", "--window-size=1200,900")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 900) and len(data) > 20_000  # a rendered page, not a blank one
