"""Linear centred kernel alignment (CKA), Kornblith et al. 2019, biased HSIC estimator.

Written here because neither SpikingJelly nor torch ships a differentiable CKA. Fixes of the authors'
reference code:

* features are flattened with the *actual* batch size (``flatten``), so a last partial batch works;
* the centred Gram matrices are not checked for symmetry (that check raised under TF32 and synced the GPU);
* a batch of one sample or constant features give CKA = 0 (no alignment) instead of NaN, with a zero
  (not NaN) gradient;
* the computation always runs in float32 (float64 if given), also inside ``torch.autocast``;
* any scale works: each side is first multiplied by a power of two ``2**-e`` (``e`` from ``frexp`` of its
  largest magnitude), which is exact in floating point, and ``eps`` by ``2**-(2 e_x + 2 e_y)``, so the result
  is bit for bit the unscaled formula's wherever that one did not overflow, and right where it did
  (features of magnitude 1e8 gave 0.0 in float32 and 1e30 NaN before). ``eps`` thus keeps its meaning at the
  inputs' own scale, as in the reference.
"""

from __future__ import annotations

import torch

__all__ = ["linear_cka", "linear_cka_per_step", "centered_gram"]

# Smallest squared Frobenius norm treated as non-zero: keeps sqrt's gradient finite at exactly 0.
_TINY = 1e-30
# A centred Gram matrix whose norm is below this fraction of the uncentred one's is rounding noise
# (constant features): treated as exactly zero, so that CKA is 0 rather than a random value.
_REL_ZERO = {torch.float32: 1e-5, torch.float64: 1e-12}


def _gram_pair(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H K H, K)`` with ``K = X X^T`` for ``x [..., B, D]``; both ``[..., B, B]``."""
    k = x @ x.transpose(-1, -2)
    # H K H = K - row means - column means + grand mean (no B x B matrix product needed).
    row = k.mean(dim=-2, keepdim=True)
    col = k.mean(dim=-1, keepdim=True)
    return k - row - col + k.mean(dim=(-2, -1), keepdim=True), k


def centered_gram(x: torch.Tensor) -> torch.Tensor:
    """``H (X X^T) H`` with ``H = I - 11^T / B`` for ``x`` of shape ``[B, D]`` (or ``[..., B, D]``)."""
    return _gram_pair(x)[0]


def _unit_scale(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x * 2**-e, e)`` with ``e`` [...] the binary exponent of ``max |x|`` over the last two dims, so that
    the largest magnitude lies in [0.5, 1). Multiplying by a power of two is exact (no rounding)."""
    with torch.no_grad():
        amax = x.abs().amax(dim=(-2, -1), keepdim=True)
        e = torch.frexp(torch.where(torch.isfinite(amax), amax, torch.ones_like(amax))).exponent
    return torch.ldexp(x, -e), e.squeeze(-1).squeeze(-1)


def _cka(x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """CKA over the last two dims of ``x [..., B, p]`` and ``y [..., B, q]`` -> ``[...]``."""
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    with torch.autocast(device_type=x.device.type, enabled=False):
        xs, ex = _unit_scale(x.to(dtype))
        ys, ey = _unit_scale(y.to(dtype))
        # Gram matrices scale by 2**-2e, their squared norms by 2**-4e: eps and _TINY follow exactly.
        kc, k = _gram_pair(xs)
        lc, l = _gram_pair(ys)
        hsic = (kc * lc).sum(dim=(-2, -1))
        # clamp keeps sqrt differentiable at 0; where the norm really is 0 the numerator is 0 as well.
        tiny_k = torch.ldexp(torch.full_like(hsic, _TINY), -4 * ex)
        tiny_l = torch.ldexp(torch.full_like(hsic, _TINY), -4 * ey)
        norm_k = torch.maximum((kc * kc).sum(dim=(-2, -1)), tiny_k).sqrt()
        norm_l = torch.maximum((lc * lc).sum(dim=(-2, -1)), tiny_l).sqrt()
        rel = _REL_ZERO[dtype]
        with torch.no_grad():
            degenerate = (norm_k <= rel * k.norm(dim=(-2, -1))) | (norm_l <= rel * l.norm(dim=(-2, -1)))
        cka = hsic / (norm_k * norm_l + torch.ldexp(torch.full_like(hsic, eps), -2 * (ex + ey)))
        return torch.where(degenerate, torch.zeros_like(cka), cka)


def _check(x, name: str, min_dim: int, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.dim() < min_dim:
        raise ValueError(f"{name}: expected shape {layout} (at least {min_dim} dims), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")


def linear_cka(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Linear CKA between two sets of features of the same samples.

    ``CKA(X, Y) = <Kc, Lc>_F / (||Kc||_F ||Lc||_F + eps)`` with ``K = X X^T``, ``L = Y Y^T``,
    ``Kc = H K H``, ``H = I - 11^T / B``.

    Args:
        x: ``[B, ...]`` features, rows are samples (flattened to ``[B, p]``).
        y: ``[B, ...]`` features of the same ``B`` samples (flattened to ``[B, q]``; ``q`` may differ).
        eps: added to the denominator, as in the reference (1e-7).

    Returns:
        0-dim float32 tensor (float64 for float64 inputs) in ``[0, 1]``; 0 when either side has no
        variation across the batch (``B = 1`` or constant features), with a zero gradient there.
    """
    _check(x, "x", 2, "[B, ...]")
    _check(y, "y", 2, "[B, ...]")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"y: expected the same batch size as x ({x.shape[0]}), got {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError(
            f"x: expected at least one sample (B >= 1), got an empty batch of shape {tuple(x.shape)}"
        )
    return _cka(x.flatten(1), y.flatten(1), eps)


def linear_cka_per_step(x: torch.Tensor, y: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Linear CKA at every time step of multi-step features.

    Args:
        x: ``[T, B, ...]`` features (e.g. a LIF layer's membrane potentials ``[T, B, C, H, W]``).
        y: ``[T, B, ...]`` features of the same samples and steps (trailing sizes may differ).

    Returns:
        ``[T]`` tensor, ``out[t] = linear_cka(x[t], y[t])``, computed in one batched pass.
    """
    _check(x, "x", 3, "[T, B, ...] (time first, then batch, then features)")
    _check(y, "y", 3, "[T, B, ...] (time first, then batch, then features)")
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"y: expected {x.shape[0]} time steps (as x), got {y.shape[0]} (shape {tuple(y.shape)})"
        )
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"y: expected batch size {x.shape[1]} (as x), got {y.shape[1]} (shape {tuple(y.shape)})"
        )
    if x.shape[1] == 0 or x.shape[0] == 0:
        raise ValueError(
            f"x: expected at least one time step and one sample ([T, B, ...] with T, B >= 1), got shape {tuple(x.shape)}"
        )
    return _cka(x.flatten(2), y.flatten(2), eps)
