"""sj_common.reference: the weights-only reader, container unwrapping, one error for what does not fit.

The helpers at the top (no ``test_`` names) write checkpoints in a reference's format from the key lists in
``../shared/reference-keys`` and are shared by ``tests/{calib,bkd,transfer}/test_reference.py``.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from sj_common.reference import (
    ReferenceCheckpointError,
    detect_source,
    load_reference_checkpoint,
    safe_load,
    unwrap_container,
)
from torch import nn

KEYS = Path(__file__).parents[2].parent / "shared" / "reference-keys"
needs_keys = pytest.mark.skipif(not KEYS.is_dir(), reason="../shared/reference-keys absent")


def read_keys(name: str) -> tuple[str, list[tuple[str, tuple[int, ...], str | None]]]:
    """``(header line, [(key, shape, stored value or None)])`` of ``<name>_ref.txt``."""
    lines = (KEYS / f"{name}_ref.txt").read_text().splitlines()
    header = next(ln for ln in lines if ln.startswith("#"))
    rows = []
    for ln in lines:
        if ln.startswith("#") or not ln.strip():
            continue
        parts = ln.split("\t")
        value = parts[3] if len(parts) > 3 and parts[3].strip() else None
        rows.append((parts[0], tuple(ast.literal_eval(parts[1])), value))
    return header, rows


def reference_state(name: str, *, meta: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with the reference's key names and shapes (BN variances positive, counters int64,
    stored constants such as the LIF threshold at their listed value); on the meta device if ``meta``."""
    _, rows = read_keys(name)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape, value in rows:
        if meta:
            dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
            out[key] = torch.empty(shape, dtype=dtype, device="meta")
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.tensor(7 + len(out))
        elif value is not None and not key.startswith("coefficient"):
            out[key] = torch.full(shape, float(value))
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        else:
            out[key] = torch.randn(shape, generator=g)
    return out


def write_reference(path: Path, name: str, state: dict[str, torch.Tensor], **args) -> Path:
    """Save ``state`` in the container the header of ``<name>_ref.txt`` describes."""
    header, _ = read_keys(name)
    ns = argparse.Namespace(lr=0.1, model=name, **args)
    if "bare model.state_dict()" in header:
        obj = state
    elif '{"model": model_without_ddp.state_dict()' in header:  # BKDSNN SEW train_distillation.py
        obj = {
            "model": state,
            "optimizer": {},
            "lr_scheduler": {},
            "epoch": 3,
            "args": ns,
            "max_test_acc1": 1.0,
        }
    elif "CheckpointSaver" in header:  # timm
        obj = {
            "epoch": 3,
            "arch": name,
            "state_dict": state,
            "optimizer": {},
            "version": 2,
            "args": ns,
            "metric": 1.0,
        }
    else:
        raise AssertionError(f"unknown container in {name}: {header}")
    torch.save(obj, path)
    return path


def check_mapping(
    model: nn.Module, ref: dict, expected: dict, *, dropped=(), folds=(), consts=(), others=()
) -> None:
    """Every reference key is accounted for and every tensor of ours equals its mapped reference tensor.

    ``expected``: ref key -> (our key, transform or None); ``folds``: (ref bias key, ref BN prefix, our BN
    prefix): ours running_mean == ref running_mean - bias; ``dropped``/``consts``: ref keys not loaded;
    ``others``: ``{our key: ref keys}`` set otherwise (checked by the caller).
    """
    accounted = set(expected) | set(dropped) | {f[0] for f in folds} | set(consts)
    accounted |= {k for keys in dict(others).values() for k in keys}
    assert sorted(set(ref) - accounted) == [], "the test's mapping misses reference keys"
    ours = model.state_dict()
    targets = {v[0] for v in expected.values()} | set(dict(others))
    assert sorted(set(ours) - targets) == [], "keys of ours the test's mapping does not set"
    fold_means = {our + "running_mean" for _, _, our in folds}
    for rk, (ok, fn) in expected.items():
        if ok in fold_means:
            continue
        want = fn(ref[rk]) if fn else ref[rk]
        assert ours[ok].shape == want.shape, (rk, ok)
        if want.device.type != "meta":
            assert torch.equal(ours[ok], want), (rk, ok)
    for bias, ref_bn, our_bn in folds:
        want = ref[ref_bn + "running_mean"] - ref[bias]
        if want.device.type != "meta":
            assert torch.equal(ours[our_bn + "running_mean"], want), bias


def fold_identity(weight, bias, ref_bn_prefix, ref, our_block: nn.Module, x: torch.Tensor) -> None:
    """conv(x) + bias -> BN(reference stats) == our conv (no bias) -> BN(shifted mean), in eval mode."""
    w = weight if weight.dim() == 4 else weight.unsqueeze(-1)
    y_ref = F.batch_norm(
        F.conv2d(x, w, bias, padding=w.shape[-1] // 2),
        ref[ref_bn_prefix + "running_mean"],
        ref[ref_bn_prefix + "running_var"],
        ref[ref_bn_prefix + "weight"],
        ref[ref_bn_prefix + "bias"],
        training=False,
    )
    our_block.eval()
    with torch.no_grad():
        y = our_block(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    unfolded = F.batch_norm(
        F.conv2d(x, w, None, padding=w.shape[-1] // 2),
        ref[ref_bn_prefix + "running_mean"],
        ref[ref_bn_prefix + "running_var"],
        ref[ref_bn_prefix + "weight"],
        ref[ref_bn_prefix + "bias"],
        training=False,
    )
    assert (unfolded - y_ref).abs().max() > 1e-2  # the bias matters: dropping it would be caught


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
        load_reference_checkpoint(_tiny(), path, source="qcfs")
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


def test_detect_source_and_unknown_source():
    assert detect_source({"layer1.0.weight", "classifier.1.weight"}) == "qcfs"
    assert detect_source({"conv1.2.up"}) == "qcfs"
    assert detect_source({"patch_embed.proj_conv.weight"}) == "bkdsnn"
    assert detect_source({"layer1.0.conv1.module.0.weight"}) == "bkdsnn"
    assert detect_source({"coefficient.0", "feature.0.conv.weight"}) == "transfer_for_dvs"
    with pytest.raises(ReferenceCheckpointError, match="source="):
        detect_source({"w"})
    with pytest.raises(ValueError, match="source: expected one of"):
        from sj_common.reference import convert_reference_state

        convert_reference_state({}, _tiny(), "qcfs_v2")
