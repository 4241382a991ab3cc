"""Everything that differs between the two SpikingJelly lines, in one place.

* SpikingJelly 2.x (``pip install spikingjelly``): neurons have no ``backend`` argument and pick their
  own kernels (torch on CPU, Triton/CUDA on GPU); ``op_counter`` exists; ``surrogate.Rect`` exists. The
  fused kernels serve only SpikingJelly's own surrogate classes (not subclasses; not ``Rect``): any other
  surrogate runs the Python reference loop, so plugins pass SpikingJelly's classes themselves.
* SpikingJelly 0.0.0.0.14 (the CuPy line, ``pip install --no-deps spikingjelly==0.0.0.0.14``): neurons
  take ``backend='torch'|'cupy'``; no ``op_counter``; no ``surrogate.Rect``; CuPy needs the surrogate's
  CUDA code, which not every surrogate has (:func:`has_cuda_code`).

Plugins build neurons through :func:`if_node` / :func:`lif_node` (or call :func:`set_fastest_backend` on a
finished network) and never touch ``backend`` themselves, and get the rectangle surrogate through
:func:`rect_surrogate`.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata

import torch
from spikingjelly.activation_based import neuron

__all__ = [
    "SPIKINGJELLY_VERSION",
    "LEGACY",
    "has_cupy",
    "has_cuda_code",
    "fastest_backend",
    "if_node",
    "lif_node",
    "set_fastest_backend",
    "op_counter",
    "set_initial_potential",
    "rect_surrogate",
    "RectGrad",
]


def _version() -> str:
    try:
        return metadata.version("spikingjelly")
    except metadata.PackageNotFoundError:  # pragma: no cover - vendored copy without metadata
        return "unknown"


SPIKINGJELLY_VERSION: str = _version()
#: True on the 0.0.0.0.14 line, detected by its API (neurons with a ``backend`` argument), not by name.
LEGACY: bool = hasattr(neuron.IFNode(), "backend")


def has_cupy() -> bool:
    """Whether cupy can be imported (SpikingJelly 0.0.0.0.14's CUDA kernels need it)."""
    return importlib.util.find_spec("cupy") is not None


def fastest_backend(device: torch.device | str | None = None) -> str | None:
    """The backend to pass to a 0.0.0.0.14 neuron, or ``None`` on 2.x (which chooses by itself).

    'cupy' when the line is 0.0.0.0.14, the device is CUDA and cupy is installed; otherwise 'torch'.
    """
    if not LEGACY:
        return None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type == "cuda" and has_cupy():
        return "cupy"
    return "torch"


def has_cuda_code(surrogate_function: torch.nn.Module | None) -> bool:
    """Whether SpikingJelly 0.0.0.0.14 can generate the CuPy kernel code of this surrogate.

    That line's CuPy neurons (IF, LIF, PLIF, ...) ask the surrogate for its CUDA source
    (``cuda_codes`` / ``cuda_code``); some of its own classes (``PiecewiseQuadratic``, hence
    ``sj_transfer``'s QGateGrad) and every surrogate of ours (:class:`RectGrad`) have none and would fail
    at the first training step. ``None`` (the neuron's default surrogate, ``Sigmoid``) has code."""
    if surrogate_function is None:
        return True
    try:
        surrogate_function.cuda_codes(y="y", x="x", dtype="float")
        surrogate_function.cuda_code(x="x", y="y", dtype="fp32")
    except (NotImplementedError, AttributeError):
        return False
    return True


def _node(cls, backend: str | None, **kwargs):
    kwargs.setdefault("step_mode", "m")
    if LEGACY:
        chosen = backend or fastest_backend()
        if chosen == "cupy" and not has_cuda_code(kwargs.get("surrogate_function")):
            if backend == "cupy":
                raise ValueError(
                    f"backend='cupy': expected a surrogate_function with CuPy code (SpikingJelly 0.0.0.0.14), "
                    f"got {type(kwargs['surrogate_function']).__name__}, which has none; pass backend=None "
                    "(the torch backend) or a surrogate such as ATan or Sigmoid"
                )
            chosen = "torch"  # the automatic choice: the fastest backend this surrogate can run on
        kwargs["backend"] = chosen
    elif backend not in (None, "auto", "torch"):
        raise ValueError(
            f"backend={backend!r} is only available on SpikingJelly 0.0.0.0.14; "
            f"SpikingJelly {SPIKINGJELLY_VERSION} picks its kernels itself (pass backend=None)"
        )
    return cls(**kwargs)


def if_node(backend: str | None = None, **kwargs) -> neuron.IFNode:
    """A multi-step SpikingJelly ``IFNode`` on the fastest backend of the installed line.

    ``kwargs`` go to ``IFNode`` (``v_threshold``, ``v_reset``, ``surrogate_function``, ...);
    ``step_mode`` defaults to ``'m'``. ``backend`` overrides the automatic choice (0.0.0.0.14 only).
    """
    return _node(neuron.IFNode, backend, **kwargs)


def lif_node(backend: str | None = None, **kwargs) -> neuron.LIFNode:
    """A multi-step SpikingJelly ``LIFNode`` on the fastest backend of the installed line (see :func:`if_node`)."""
    return _node(neuron.LIFNode, backend, **kwargs)


def set_fastest_backend(net: torch.nn.Module, device: torch.device | str | None = None) -> torch.nn.Module:
    """Move every neuron of ``net`` that supports it to the fastest backend (no-op on SpikingJelly 2.x).

    Call it after ``net.to(device)``; returns ``net``. Neurons whose surrogate has no CuPy code
    (:func:`has_cuda_code`) keep their backend.
    """
    backend = fastest_backend(device)
    if backend is None:
        return net
    for m in net.modules():
        if hasattr(m, "backend") and backend in getattr(m, "supported_backends", ()):
            if backend == "cupy" and getattr(m, "step_mode", "m") != "m":
                continue  # cupy kernels are multi-step only
            if backend == "cupy" and not has_cuda_code(getattr(m, "surrogate_function", None)):
                continue  # no CuPy code for its surrogate: the torch backend is the fastest it has
            m.backend = backend
    return net


def op_counter():
    """SpikingJelly's ``activation_based.op_counter`` module, or ``None`` on 0.0.0.0.14 (it has none)."""
    try:
        return importlib.import_module("spikingjelly.activation_based.op_counter")
    except ImportError:
        return None


def set_initial_potential(node: torch.nn.Module, v: torch.Tensor) -> None:
    """Set a neuron's membrane potential to ``v`` (shape ``[B, ...]``, one step's shape) before a run.

    SpikingJelly 2.x silently replaces a float ``v`` or a tensor of the wrong shape by ``v_reset`` on
    the first step, so we check the shape against the existing state where there is one; call it after
    ``reset()`` and pass a tensor of exactly the per-step input shape.
    """
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"v: expected a torch.Tensor of the per-step input shape, got {type(v).__name__}")
    current = getattr(node, "v", None)
    if isinstance(current, torch.Tensor) and current.dim() > 0 and current.shape != v.shape:
        raise ValueError(
            f"v: expected shape {tuple(current.shape)} (the neuron's state), got {tuple(v.shape)}"
        )
    node.v = v


class _RectFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        if x.requires_grad:
            ctx.save_for_backward(x)
            ctx.alpha = alpha
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() < 0.5 / ctx.alpha).to(grad_output) * ctx.alpha, None


class RectGrad(torch.nn.Module):
    """Heaviside forward, rectangle ``alpha * 1[|x| < 0.5/alpha]`` backward (= 2.x ``surrogate.Rect``).

    Why here: SpikingJelly 0.0.0.0.14 lacks ``Rect`` (and its ``PiecewiseLeakyReLU`` does not match it), so
    :func:`rect_surrogate` falls back to this on that line. Input ``x = v - v_threshold`` of any shape;
    spikes of the same shape. Torch backend only (no CuPy code generation: :func:`has_cuda_code` is False).
    """

    def __init__(self, alpha: float = 1.0, spiking: bool = True):
        super().__init__()
        if not spiking:
            raise ValueError(f"spiking: RectGrad only supports spiking=True, got {spiking!r}")
        self.alpha = alpha
        self.spiking = spiking

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _RectFn.apply(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


def rect_surrogate(alpha: float = 1.0) -> torch.nn.Module:
    """``surrogate.Rect(alpha)`` on SpikingJelly 2.x, :class:`RectGrad` (the same gradient) on 0.0.0.0.14."""
    from spikingjelly.activation_based import surrogate

    rect = getattr(surrogate, "Rect", None)
    return rect(alpha=alpha) if rect is not None else RectGrad(alpha=alpha)
