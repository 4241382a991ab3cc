"""Release metadata: the four packages share one version (lockstep), every plugin's sj-common bound matches it
and the bump script (scripts/set_version.py) moves all of them together; each package ships the licence.
``scripts/release_check.py`` (run by .ci/run) builds and installs the wheels."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sj_common", "sj_calib", "sj_bkd", "sj_transfer")


def _script():
    spec = importlib.util.spec_from_file_location("set_version", ROOT / "scripts" / "set_version.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _version(root: Path, pkg: str) -> str:
    tree = ast.parse((root / pkg / "src" / pkg / "__init__.py").read_text())
    values = [
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["__version__"]
    ]
    assert len(values) == 1, pkg
    return values[0]


def _sj_common_requirements(project: dict) -> list[str]:
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return [r for r in reqs if re.match(r"sj-common\b", r)]


def check_lockstep(root: Path) -> str:
    """The one version of ``root``'s four packages; fails unless every place agrees with it."""
    versions = {pkg: _version(root, pkg) for pkg in PACKAGES}
    assert len(set(versions.values())) == 1, versions
    version = versions["sj_common"]
    major, minor, _ = (int(p) for p in version.split("."))
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    for pkg in PACKAGES:
        project = tomllib.loads((root / pkg / "pyproject.toml").read_text())
        assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"], pkg
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": f"{pkg}.__version__"}, pkg
        reqs = _sj_common_requirements(project["project"])
        if pkg == "sj_common":
            assert reqs == [], reqs
            continue
        assert reqs, f"{pkg} does not require sj-common"
        for r in reqs:
            assert re.fullmatch(rf"sj-common(\[\w+\])?>={re.escape(version)},<{re.escape(upper)}", r), (
                pkg,
                r,
            )
    return version


def test_the_four_versions_and_the_bounds_agree():
    check_lockstep(ROOT)


def test_installed_sj_common_is_the_version_of_this_checkout():
    """What the tests import is what the plugins' bounds were written for."""
    import sj_common

    assert sj_common.__version__ == _version(ROOT, "sj_common")


@pytest.mark.parametrize(
    ("version", "upper"), [("0.1.0", "0.2"), ("0.9.3", "0.10"), ("1.0.0", "2"), ("2.13.1", "3")]
)
def test_upper_bound_is_the_next_minor_before_1_and_the_next_major_after(version, upper):
    script = _script()
    assert script.upper_bound(version) == upper
    assert script.requirement_spec(version) == f">={version},<{upper}"


def test_upper_bound_refuses_a_version_that_is_not_three_integers():
    with pytest.raises(ValueError, match=r"version: expected X.Y.Z .*got '0.2'"):
        _script().upper_bound("0.2")


def test_set_version_moves_every_place_together(tmp_path):
    for pkg in PACKAGES:
        (tmp_path / pkg / "src" / pkg).mkdir(parents=True)
        shutil.copy(ROOT / pkg / "pyproject.toml", tmp_path / pkg / "pyproject.toml")
        shutil.copy(ROOT / pkg / "src" / pkg / "__init__.py", tmp_path / pkg / "src" / pkg / "__init__.py")
    changed = _script().set_version("1.4.2", root=tmp_path)
    assert len(changed) == 7
    assert check_lockstep(tmp_path) == "1.4.2"
    deps = tomllib.loads((tmp_path / "sj_transfer" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert deps == ["sj-common[events]>=1.4.2,<2"]


def test_each_package_ships_the_repository_licence():
    """setuptools packs ``<pkg>/LICENSE`` into the sdist and wheel; a package cannot reach ``../LICENSE``."""
    licence = (ROOT / "LICENSE").read_text()
    for pkg in PACKAGES:
        assert (ROOT / pkg / "LICENSE").read_text() == licence, pkg
