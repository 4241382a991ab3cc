"""The packages' lazy exports (PEP 562) resolve to what they name, whatever was imported before.

A package that exports a function under the name of one of its own submodules (``sj_calib.convert`` once was
both) hands out the module instead of the function as soon as anything imports that submodule: the import
system binds the submodule onto the package, and the lazy ``__getattr__`` is never asked again.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

PACKAGES = ["sj_common", "sj_common.engine", "sj_common.data", "sj_calib", "sj_bkd", "sj_transfer"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_export_shares_a_submodule_name(package):
    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    clash = sorted(set(getattr(pkg, "__all__", ())) & submodules)
    assert not clash, f"{package} exports {clash}, which are also its submodules"


@pytest.mark.slow
def test_exports_are_the_functions_after_every_submodule_is_imported():
    # a fresh interpreter, so that no earlier test has resolved the names already
    code = """
import importlib, pkgutil, types
packages = PACKAGES_LIST
for name in packages:
    pkg = importlib.import_module(name)
    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name not in ("cli", "demo", "show"):
            importlib.import_module(f"{name}.{m.name}")
bad = []
for name in packages:
    pkg = importlib.import_module(name)
    for attr in getattr(pkg, "__all__", ()):
        if isinstance(getattr(pkg, attr), types.ModuleType):
            bad.append(f"{name}.{attr}")
print(bad)
assert not bad, bad
""".replace("PACKAGES_LIST", repr(PACKAGES))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
