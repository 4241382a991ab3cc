"""``--help`` imports no torch (issue 9: "prints in about a second, imports deferred").

The console scripts run as a user runs them (subprocesses of the venv's ``bin/sj-*``) with
``PYTHONPROFILEIMPORTTIME=1``; the test asserts the set of modules they imported, not a time. The config
defaults that ``--help`` shows are read from the methods' source without importing them
(``sj_common.config.read_signature`` / ``read_constant``): every such read must equal the imported value.
"""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys

import pytest

from sj_common import config as C
from tests.console import BIN, env

HEAVY = {"torch", "torchvision", "spikingjelly", "tonic", "timm", "matplotlib", "scipy"}
HELPS = [
    ("sj-calib", ["--help"]),
    ("sj-calib", ["train", "--config", "mnist5k", "--help"]),
    ("sj-calib", ["sweep", "--config", "mnist5k", "--help"]),
    ("sj-transfer", ["train", "--config", "mnist5k", "--help"]),
    ("sj-transfer", ["eval", "--config", "mnist5k", "--help"]),
    ("sj-bkd", ["--help"]),
    ("sj-bkd", ["train", "--config", "mnist5k", "--help"]),
]


def _imported(stderr: str) -> set[str]:
    """Top-level packages named in ``-X importtime`` output (``import time: self | cumulative | name``)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name.split(".")[0])
    return names


@pytest.mark.parametrize(("prog", "args"), HELPS, ids=[f"{p} {' '.join(a)}" for p, a in HELPS])
def test_help_imports_no_torch(prog, args):
    p = subprocess.run(
        [str(BIN / prog), *args],
        capture_output=True,
        text=True,
        env={**env(), "PYTHONPROFILEIMPORTTIME": "1"},
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("usage:"), p.stdout[:300]
    imported = _imported(p.stderr)
    assert {"sj_common", prog.replace("-", "_")} <= imported  # the profile was read
    assert not imported & HEAVY, sorted(imported & HEAVY)
    if "--config" in args:  # the values shown are the config's (not only the dataclass defaults)
        assert "(config: " in p.stdout


@pytest.mark.slow
def test_command_after_help_path_still_checks_with_method_code():
    """The help's parse skips the recipe's checks that import the method's code; the command itself runs
    them: an unknown model name exits 2 naming the key, before any work."""
    p = subprocess.run(
        [str(BIN / "sj-calib"), "train", "--config", "mnist5k", "--set", "model.name=vgg99", "--epochs", "1"],
        capture_output=True,
        text=True,
        env=env(),
        timeout=300,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "model.name: expected one of" in p.stderr and "vgg99" in p.stderr


def test_defaults_read_from_source_equal_the_imported_signatures():
    from sj_bkd.recipe import RECIPE as bkd
    from sj_calib.recipe import RECIPE as calib
    from sj_transfer.recipe import RECIPE as transfer

    # every default_of / read_constant of a reference: the value the imported object has
    assert C.DEFAULTS_READ, "the recipes read no defaults from source"
    for ref, param, value in C.DEFAULTS_READ:
        obj = C.resolve(ref)
        if param is None:
            assert obj == value, ref
        else:
            target = obj.__init__ if inspect.isclass(obj) else obj
            assert inspect.signature(target).parameters[param].default == value, (ref, param)
    # every section derived from a reference: the same fields, types and defaults as from the callable
    sections = []
    for recipe in (bkd, calib, transfer):
        for f in dataclasses.fields(recipe.config_type):
            tp = C._hints(recipe.config_type)[f.name]
            if hasattr(tp, "__section_sources__"):
                sections.append(tp)
    assert len(sections) == 3  # BkdDistill, CalibOptions, TransferMethod
    for cls in sections:
        srcs = [(C.resolve(s[0]), *s[1:]) if isinstance(s[0], str) else s for s in cls.__section_sources__]
        assert all(isinstance(s[0], str) for s in cls.__section_sources__), cls.__name__
        imported = C.section_from(cls.__name__, *srcs)
        extra = {f.name for f in dataclasses.fields(cls)} - {f.name for f in dataclasses.fields(imported)}
        got = [(f.name, f.type, f.default) for f in dataclasses.fields(cls) if f.name not in extra]
        want = [(f.name, f.type, f.default) for f in dataclasses.fields(imported)]
        assert got == want, cls.__name__
        assert cls() == cls(**{k: v for k, v in dataclasses.asdict(imported()).items()}), cls.__name__


def test_reading_a_source_refuses_what_it_cannot_read(tmp_path, monkeypatch):
    mod = tmp_path / "sj_help_probe.py"
    mod.write_text(
        "import math\nLIMIT = 3\n\n"
        "def f(a, b: int = LIMIT, c: 'float | None' = None, d=math.pi, *, e: str = 'x'):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    params, hints = C.read_signature("sj_help_probe:f")
    assert params["a"] is inspect.Parameter.empty and params["b"] == 3 and params["c"] is None
    assert params["e"] == "x" and hints["b"] is int and hints["e"] is str and hints["c"] == float | None
    with pytest.raises(ValueError, match=r"math\.pi.*not a literal"):
        C.default_of("sj_help_probe:f", "d")
    with pytest.raises(ValueError, match="no 'g' in"):
        C.read_signature("sj_help_probe:g")
    with pytest.raises(ValueError, match="not a module-level literal"):
        C.read_constant("sj_help_probe:math")
    assert "sj_help_probe" not in sys.modules  # read, never imported
