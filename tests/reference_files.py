"""Checkpoints in the papers' formats for the reference tests of the plugins
(``tests/{calib,bkd,transfer}/test_reference.py``): written from the key lists in ``../shared/reference-keys``,
and the checks that every key was mapped by value."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

KEYS = Path(__file__).parents[1].parent / "shared" / "reference-keys"
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
