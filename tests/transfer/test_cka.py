import pytest
import torch
from sj_transfer.cka import centered_gram, linear_cka, linear_cka_per_step


def direct_cka(x, y, eps=1e-7):
    """The formula written out with the centring matrix H, in float64."""
    x, y = x.double().flatten(1), y.double().flatten(1)
    n = x.shape[0]
    h = torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64) / n
    kc, lc = h @ x @ x.T @ h, h @ y @ y.T @ h
    return (kc * lc).sum() / (kc.norm() * lc.norm() + eps)


pytestmark = pytest.mark.compat


def test_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    for n, p, q in [(8, 5, 7), (16, 40, 3), (5, 100, 100)]:
        x, y = torch.randn(n, p, generator=g), torch.randn(n, q, generator=g)
        y = y + 0.5 * torch.randn(n, q, generator=g)
        assert linear_cka(x, y).item() == pytest.approx(direct_cka(x, y).item(), rel=1e-5, abs=1e-6)
        # float64 path matches tightly
        assert linear_cka(x.double(), y.double()).item() == pytest.approx(direct_cka(x, y).item(), rel=1e-10)


def test_centered_gram_is_hkh():
    x = torch.randn(6, 4, dtype=torch.float64)
    h = torch.eye(6, dtype=torch.float64) - 1 / 6
    torch.testing.assert_close(centered_gram(x), h @ x @ x.T @ h)


def test_self_similarity_is_one_and_range():
    x = torch.randn(12, 30)
    assert linear_cka(x, x).item() == pytest.approx(1.0, abs=1e-5)
    y = torch.randn(12, 9)
    v = linear_cka(x, y).item()
    assert 0.0 <= v <= 1.0


def test_invariance_orthogonal_and_isotropic_scaling():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(20, 10, generator=g, dtype=torch.float64)
    y = x @ torch.randn(10, 6, generator=g, dtype=torch.float64) + torch.randn(
        20, 6, generator=g, dtype=torch.float64
    )
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    base = linear_cka(x, y).item()
    assert 0.05 < base < 0.999
    assert linear_cka(x @ q, y).item() == pytest.approx(base, rel=1e-9)
    assert linear_cka(3.7 * x, 0.01 * y).item() == pytest.approx(base, rel=1e-6)
    # not invariant to a general (non-orthogonal) linear map: the check can fail
    a = torch.diag(torch.tensor([10.0] + [0.1] * 9, dtype=torch.float64))
    assert abs(linear_cka(x @ a, y).item() - base) > 1e-3


def test_degenerate_inputs_give_zero_not_nan():
    x = torch.randn(8, 5, requires_grad=True)
    const = torch.ones(8, 5, requires_grad=True)
    c = linear_cka(x, const)
    assert c.item() == 0.0
    c.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(const.grad).all()
    one = torch.randn(1, 5, requires_grad=True)
    c1 = linear_cka(one, torch.randn(1, 3))
    c1.backward()
    assert c1.item() == 0.0 and torch.isfinite(one.grad).all()
    # constant but "random-looking" value: 0.3 repeated is not exactly centred to 0 in float32
    assert linear_cka(torch.full((7, 11), 0.3), torch.randn(7, 11)).item() == 0.0


def test_float32_and_autocast_large_values():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(32, 18432, generator=g) * 50  # VGG-sized features, big membrane potentials
    y = x + 20 * torch.randn(32, 18432, generator=g)
    ref = direct_cka(x, y).item()
    assert linear_cka(x, y).item() == pytest.approx(ref, rel=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = linear_cka(x.bfloat16(), y.bfloat16())
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert out.item() == pytest.approx(ref, abs=0.02)


def test_per_step_matches_loop_and_flattens():
    x = torch.randn(4, 6, 3, 2, 2)
    y = torch.randn(4, 6, 5)
    per = linear_cka_per_step(x, y)
    assert per.shape == (4,)
    for t in range(4):
        assert per[t].item() == pytest.approx(linear_cka(x[t], y[t]).item(), abs=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="batch size"):
        linear_cka(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"\[B, \.\.\.\]"):
        linear_cka(torch.randn(4), torch.randn(4))
    with pytest.raises(TypeError, match="floating"):
        linear_cka(torch.ones(4, 3, dtype=torch.long), torch.randn(4, 3))
    with pytest.raises(ValueError, match="time steps"):
        linear_cka_per_step(torch.randn(4, 3, 2), torch.randn(5, 3, 2))
    with pytest.raises(ValueError, match=r"\[T, B"):
        linear_cka_per_step(torch.randn(4, 3), torch.randn(4, 3))


def _cka_float64_reference(x: torch.Tensor, y: torch.Tensor) -> float:
    """Textbook linear CKA in float64 numpy (no eps): ||Y^T X||^2 / (||X^T X|| ||Y^T Y||) on centred X, Y."""
    import numpy as np

    a, b = x.double().flatten(1).numpy(), y.double().flatten(1).numpy()
    a, b = a - a.mean(0), b - b.mean(0)
    return float(np.linalg.norm(b.T @ a) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


@pytest.mark.parametrize("scale", [1e8, 1e30])
def test_large_feature_scales_give_the_float64_value(scale):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 40, generator=g)
    y = x @ torch.randn(40, 30, generator=g) + 2 * torch.randn(16, 30, generator=g)
    ref = _cka_float64_reference(x, y)
    assert abs(ref - 0.8512114) < 1e-6
    # before: 0.0 at 1e8 (float32 overflow, flagged degenerate) and NaN at 1e30
    got = linear_cka(x * scale, y * scale)
    assert got.dtype == torch.float32 and abs(got.item() - ref) < 1e-5
    per_step = linear_cka_per_step(torch.stack([x, x * scale]), torch.stack([y, y * scale]))
    assert torch.allclose(per_step, torch.tensor([ref, ref], dtype=torch.float32), atol=1e-5)


def test_power_of_two_rescaling_is_bit_identical_to_the_plain_formula():
    # the spec's formula computed directly (no rescaling, eps = 1e-7 at the inputs' own scale), for ordinary
    # magnitudes: the same bits (multiplying by 2**-e is exact), the same gradient up to rounding
    def plain(x, y, eps=1e-7):
        def gram(z):
            k = z @ z.T
            return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()

        kc, lc = gram(x), gram(y)
        return (kc * lc).sum() / ((kc * kc).sum().sqrt() * (lc * lc).sum().sqrt() + eps)

    g = torch.Generator().manual_seed(3)
    x = (3 * torch.randn(8, 20, generator=g)).requires_grad_()
    y = torch.randn(8, 6, generator=g)
    a = linear_cka(x, y)
    (ga,) = torch.autograd.grad(a, x)
    b = plain(x, y)
    (gb,) = torch.autograd.grad(b, x)
    assert torch.equal(a, b) and torch.allclose(ga, gb, rtol=1e-5, atol=1e-9)


def test_empty_batch_is_an_error():
    with pytest.raises(
        ValueError, match=r"x: expected at least one sample \(B >= 1\), got an empty batch of shape \(0, 5\)"
    ):
        linear_cka(torch.zeros(0, 5), torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"x: expected at least one time step and one sample.*\(4, 0, 5\)"):
        linear_cka_per_step(torch.zeros(4, 0, 5), torch.zeros(4, 0, 3))
