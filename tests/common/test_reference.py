"""sj_common.reference: the weights-only reader, container unwrapping, the registry of sources and how it finds
an installed plugin (entry points) or names the one to install. The sources' converters and their tests live
in the plugins (``tests/{calib,bkd,transfer}/test_reference.py``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pytest
import tomllib
import torch
from sj_common.reference import (
    ENTRY_POINT_GROUP,
    PROVIDERS,
    Conversion,
    ReferenceCheckpointError,
    detect_source,
    get_source,
    load_reference_checkpoint,
    map_keys,
    register_source,
    safe_load,
    unwrap_container,
)
from torch import nn

from sj_common import reference

ROOT = Path(__file__).parents[2]
PLUGINS = ("sj_calib", "sj_bkd", "sj_transfer")


# ------------------------------------------------------------------------------------------------ tests


class _Payload:
    """A pickled object whose unpickling writes a marker file (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


def _tiny():
    return nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.BatchNorm2d(2)))


def test_pickled_payload_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "args": _Payload(marker)}, path)
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.read_text() == "ran"
    marker.unlink()
    with pytest.raises(ReferenceCheckpointError, match="weights-only") as e:
        safe_load(path)
    assert "evil.pth" in str(e.value)
    with pytest.raises(ReferenceCheckpointError):
        load_reference_checkpoint(_tiny(), path)
    assert not marker.exists()


def test_namespace_allowed_and_missing_file(tmp_path):
    path = tmp_path / "ckpt.pth.tar"
    torch.save({"state_dict": {"a": torch.ones(2)}, "args": argparse.Namespace(T=4, connect_f="ADD")}, path)
    obj = safe_load(path)
    assert obj["args"].connect_f == "ADD"
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        safe_load(tmp_path / "missing.pth")


def test_unwrap_container_and_module_prefix():
    a, b = torch.ones(2), torch.zeros(2)
    state, extras = unwrap_container({"module.x": a})
    assert list(state) == ["x"] and extras == {}
    ckpt = {"state_dict": {"x": a}, "state_dict_ema": {"module.x": b}, "epoch": 3}
    state, extras = unwrap_container(ckpt)
    assert state["x"] is a and extras["epoch"] == 3 and "state_dict_ema" in extras
    state, _ = unwrap_container(ckpt, "state_dict_ema")
    assert state["x"] is b
    assert unwrap_container({"model": {"x": a}, "args": None})[0]["x"] is a
    with pytest.raises(ReferenceCheckpointError, match="'ema'"):
        unwrap_container(ckpt, "ema")
    with pytest.raises(ReferenceCheckpointError, match="no state dict"):
        unwrap_container({"epoch": 3, "weights": [1, 2]})


@pytest.fixture
def registry(monkeypatch):
    """A private copy of the registry (register_source writes into it); restored after the test, and a
    converter module first imported during the test is dropped with it (else it would stay imported while
    its registration is gone, and the next ``get_source`` could not register it again)."""
    sources, modules = dict(reference.SOURCES), set(sys.modules)
    monkeypatch.setattr(reference, "SOURCES", dict(sources))
    yield reference.SOURCES
    for name, source in reference.SOURCES.items():
        if name not in sources and source.convert.__module__ not in modules:
            sys.modules.pop(source.convert.__module__, None)


def _toy_source(name: str = "toy"):
    """A source whose files hold ``w`` -> ``0.weight`` of a Linear(2, 2) container."""

    @register_source(name, lambda keys: "w" in keys and "b" in keys, "toy -> nn.Sequential(Linear)")
    def convert(ref, model, extras) -> Conversion:
        conv = Conversion()
        map_keys(ref, conv, [(r"w", "0.weight"), (r"b", "0.bias")])
        return conv

    return convert


def test_registered_source_loads_detects_and_reports_every_problem(registry, tmp_path):
    _toy_source()
    model = nn.Sequential(nn.Linear(2, 2))
    w, b = torch.tensor([[0.5, -0.25], [2.0, 1.0]]), torch.tensor([0.125, -1.0])
    torch.save(
        {"state_dict": {"module.w": w, "module.b": b}, "args": argparse.Namespace(T=4)}, tmp_path / "a.pth"
    )
    conv = load_reference_checkpoint(model, tmp_path / "a.pth")  # detected: only "toy" matches
    assert torch.equal(model[0].weight, w) and torch.equal(model[0].bias, b)
    assert conv.source_of == {"0.weight": "w", "0.bias": "b"}
    torch.save({"w": w, "extra": b, "b": torch.zeros(3)}, tmp_path / "bad.pth")
    before = model[0].weight.clone()
    with pytest.raises(ReferenceCheckpointError) as e:
        load_reference_checkpoint(model, tmp_path / "bad.pth", source="toy")
    assert "['extra']" in str(e.value) and "0.bias: file (3,), ours (2,)" in str(e.value)
    assert torch.equal(model[0].weight, before)  # nothing was loaded


def test_register_source_refuses_a_taken_name(registry):
    first = _toy_source()
    assert _toy_source() is not first and registry["toy"].convert.__qualname__ == first.__qualname__
    with pytest.raises(ValueError, match="name: source 'toy' is registered by"):
        register_source("toy", lambda keys: False, "another")(lambda ref, model, extras: Conversion())


def test_unknown_source_names_the_known_ones(registry, tmp_path):
    _toy_source()
    with pytest.raises(ValueError, match=r"source: expected one of \[.*'toy'.*\], got 'toy_v2'"):
        get_source("toy_v2")
    # checked before the file is read: a missing file is not what is reported
    with pytest.raises(ValueError, match="got 'toy_v2'"):
        load_reference_checkpoint(nn.Linear(2, 2), tmp_path / "missing.pth", source="toy_v2")


def test_a_plugin_not_installed_is_named_with_its_install_command(registry, monkeypatch):
    for name in PROVIDERS:
        registry.pop(name, None)
    monkeypatch.setattr(reference.metadata, "entry_points", lambda group: [])  # no plugin installed
    monkeypatch.setattr(reference, "_installed", lambda dist: False)
    with pytest.raises(
        ImportError,
        match=r"'qcfs' checkpoints are read by the sj-calib plugin, which is not installed: pip install sj-calib$",
    ):
        get_source("qcfs")
    monkeypatch.setattr(reference, "_installed", lambda dist: dist == "sj-calib")  # installed, no entry point
    with pytest.raises(
        ImportError, match=r"sj-calib plugin, which is installed but declares no .* reinstall it"
    ):
        get_source("qcfs")
    with pytest.raises(ReferenceCheckpointError, match=r"not installed: bkdsnn \(pip install sj-bkd\)"):
        detect_source({"layer1.0.weight"})


def test_an_installed_plugin_is_found_through_its_entry_point_without_an_import(
    registry, monkeypatch, tmp_path
):
    """A distribution on sys.path that names its converter module in the entry point group: asking for its
    source (or detecting it) imports the module, which registers the source."""
    (tmp_path / "toy_plugin_ref.py").write_text(
        "from sj_common.reference import Conversion, map_keys, register_source\n"
        "@register_source('toy_ep', lambda keys: 'toy_ep.w' in keys, 'toy')\n"
        "def convert(ref, model, extras):\n"
        "    conv = Conversion()\n"
        "    map_keys(ref, conv, [(r'toy_ep\\.w', 'weight')])\n"
        "    return conv\n"
    )
    info = tmp_path / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntoy_ep = toy_plugin_ref\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_plugin_ref", raising=False)
    torch.save({"toy_ep.w": torch.full((1,), 0.75)}, tmp_path / "t.pth")
    try:
        assert "toy_ep" not in registry
        assert get_source("toy_ep").description == "toy" and "toy_plugin_ref" in sys.modules
        del registry["toy_ep"], sys.modules["toy_plugin_ref"]
        model = nn.Module()
        model.weight = nn.Parameter(torch.zeros(1))
        load_reference_checkpoint(model, tmp_path / "t.pth")  # detection loads every installed plugin
        assert model.weight.item() == 0.75
    finally:
        sys.modules.pop("toy_plugin_ref", None)


@pytest.mark.parametrize("package", PLUGINS)
def test_each_plugin_declares_the_sources_its_module_registers(package):
    """The entry points in each plugin's pyproject.toml agree with PROVIDERS (which says what to install) and
    name a module that registers exactly that source."""
    project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"][ENTRY_POINT_GROUP]
    assert declared and all(PROVIDERS[name] == project["name"] for name in declared)
    for name, module in declared.items():
        importlib.import_module(module)
        assert reference.SOURCES[name].convert.__module__ == module
    claimed = {
        n
        for p in PLUGINS
        for n in tomllib.loads((ROOT / p / "pyproject.toml").read_text())["project"]["entry-points"][
            ENTRY_POINT_GROUP
        ]
    }
    assert claimed == set(PROVIDERS)
