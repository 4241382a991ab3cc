"""sj-calib and sj-bkd install and import without tonic (GPL-3.0, behind sj-common's [events] extra)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.compat


def _deps(package: str) -> list[str]:
    with open(ROOT / package / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["dependencies"]


def test_base_dependencies_leave_tonic_to_the_extra():
    with open(ROOT / "sj_common" / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    assert not any(d.lower().startswith("tonic") for d in project["dependencies"])
    assert any(d.lower().startswith("tonic") for d in project["optional-dependencies"]["events"])
    # the version bound is checked in tests/test_release.py; here: which distribution and extras
    for plugin in ("sj_calib", "sj_bkd"):
        assert [d.split(">=")[0] for d in _deps(plugin)] == ["sj-common"], plugin
    assert [d.split(">=")[0] for d in _deps("sj_transfer")] == ["sj-common[events]"]


@pytest.mark.slow
def test_every_module_of_calib_and_bkd_imports_with_tonic_blocked():
    # A meta-path finder that refuses tonic stands in for an environment where it was never installed.
    script = textwrap.dedent(
        """
        import importlib, importlib.abc, pkgutil, sys

        class NoTonic(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "tonic" or name.startswith("tonic."):
                    raise ModuleNotFoundError("No module named 'tonic'", name=name)
                return None

        sys.meta_path.insert(0, NoTonic())
        imported = []
        for top in ("sj_common", "sj_calib", "sj_bkd"):
            pkg = importlib.import_module(top)
            imported.append(top)
            for info in pkgutil.walk_packages(pkg.__path__, top + "."):
                importlib.import_module(info.name)
                imported.append(info.name)
        assert "tonic" not in sys.modules
        print(len(imported))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.strip().splitlines()[-1]) >= 3
