"""Grad-CAM (and its common variants) for multi-step spiking networks, through ``pytorch_grad_cam``.

The maintained ``grad-cam`` package (``pip install "sj-common[analysis]"``) computes the maps; this module
is only the adapter that lets it see a SpikingJelly network as the image classifier it expects:

* :class:`SNNImageClassifier` takes a 4-D batch ``[B, T*C, H, W]`` (the event frames of each sample,
  time folded into channels; a 5-D input would be read by ``grad-cam`` as a 3-D volume), unfolds it to
  ``[T, B, C, H, W]``, runs the network with ``functional.reset_net`` before and after the call (no state
  leaks between ``grad-cam``'s calls, e.g. ScoreCAM's perturbed batches) and returns the time-averaged
  logits ``[B, K]`` (the prediction the engine scores).
* :func:`multistep_reshape` turns a target layer's multi-step output ``[T, B, C, h, w]`` (a
  ``SeqToANNContainer``, a multi-step neuron) or ``[T*B, C, h, w]`` (a module *inside* a
  ``SeqToANNContainer``) into ``[B, C, h, w]`` by averaging over time, for activations and gradients
  alike. Averaging the gradients is the gradient of the score under one perturbation shared by all
  steps (up to the factor ``T``, which the per-image min-max scaling of ``grad-cam`` removes).
* :func:`spatial_layers` lists the modules whose output is such a feature map (a dry run with forward
  hooks, so it works on any architecture); :func:`default_target_layer` picks the last spiking neuron
  layer among them (else the last one).
* :func:`snn_cam` runs one of :data:`METHODS` and returns maps ``[B, H, W]`` in [0, 1].

Static images enter as direct encoding: ``snn_cam(net, image [B, C, H, W], T=T)`` repeats the image at
every step (the same input the transfer method's static branch sees when its frames are equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

__all__ = [
    "METHODS",
    "SNNImageClassifier",
    "multistep_reshape",
    "spatial_layers",
    "default_target_layer",
    "snn_cam",
    "fold_time",
]

#: Names accepted by :func:`snn_cam` -> ``pytorch_grad_cam`` class names.
METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "gradcamelementwise": "GradCAMElementWise",
    "scorecam": "ScoreCAM",
}


def _grad_cam():
    try:
        import pytorch_grad_cam
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "snn_cam needs the optional grad-cam package: pip install 'sj-common[analysis]' (or grad-cam)"
        ) from e
    return pytorch_grad_cam


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, C, H, W]`` multi-step frames -> ``[B, T*C, H, W]`` (the adapter's input layout)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected multi-step frames [T, B, C, H, W], got {shape}")
    T, B, C, H, W = x.shape
    return x.permute(1, 0, 2, 3, 4).reshape(B, T * C, H, W)


class SNNImageClassifier(nn.Module):
    """A multi-step SNN seen as an image classifier: ``[B, T*C, H, W] -> time-averaged logits [B, K]``.

    Args:
        net: the spiking network (its state is reset around every call).
        T: time steps (the input's channel axis holds ``T`` groups of ``C`` channels).
        forward: ``f(net, x [T, B, C, H, W]) -> logits [T, B, K]``; default ``net(x)`` (e.g.
            ``lambda n, x: n(x, head="static")`` picks one head of a network with several).
    """

    def __init__(
        self,
        net: nn.Module,
        T: int,
        forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"T: expected a positive int, got {T!r}")
        self.net, self.T, self._forward = net, T, forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] % self.T:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x: expected [B, T*C, H, W] with T={self.T} time steps folded in, got {shape}")
        B, TC, H, W = x.shape
        seq = x.view(B, self.T, TC // self.T, H, W).transpose(0, 1)  # [T, B, C, H, W]
        functional.reset_net(self.net)
        try:
            out = self._forward(self.net, seq) if self._forward is not None else self.net(seq)
        finally:
            functional.reset_net(self.net)
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != (self.T, B):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"forward: expected logits [T={self.T}, B={B}, K], got {shape}")
        return out.mean(0)


def multistep_reshape(T: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``reshape_transform`` for ``pytorch_grad_cam``: ``[T, B, C, h, w]`` or ``[T*B, C, h, w]`` -> ``[B, C, h, w]``.

    The time mean of a target layer's output (and, applied by ``grad-cam`` to the gradients as well, of
    the gradient of the score with respect to it).
    """

    def reshape(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 5 and t.shape[0] == T:
            return t.mean(0)
        if t.dim() == 4 and t.shape[0] % T == 0:
            return t.reshape(T, t.shape[0] // T, *t.shape[1:]).mean(0)
        raise ValueError(
            f"target layer output: expected [T={T}, B, C, h, w] or [T*B, C, h, w], got {tuple(t.shape)}"
        )

    return reshape


def spatial_layers(
    net: nn.Module,
    x: torch.Tensor,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> list[tuple[str, nn.Module]]:
    """Modules of ``net`` whose output on ``x [T, B, C, H, W]`` is a multi-step feature map.

    In the order their forward calls return (a container after the modules inside it).

    A feature map is ``[T, B, C', h, w]`` (SpikingJelly containers, multi-step neurons and layers) or
    ``[T*B, C', h, w]`` (a module inside a ``SeqToANNContainer``). One dry run without gradients; the
    network is reset before and after.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected multi-step frames [T, B, C, H, W], got {shape}")
    T, B = x.shape[:2]
    found: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def hook(name):
        def fn(module, inputs, output):
            if not isinstance(output, torch.Tensor) or id(module) in seen:
                return
            if (output.dim() == 5 and output.shape[:2] == (T, B)) or (
                output.dim() == 4 and output.shape[0] == T * B
            ):
                seen.add(id(module))
                found.append((name, module))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if n]
    try:
        functional.reset_net(net)
        with torch.no_grad():
            forward(net, x) if forward is not None else net(x)
    finally:
        for h in handles:
            h.remove()
        functional.reset_net(net)
    return found


def default_target_layer(
    net: nn.Module,
    x: torch.Tensor,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[str, nn.Module]:
    """``(name, module)``: the last spiking neuron layer with a feature-map output, else the last feature map.

    The last spiking layer before the classifier is the SNN counterpart of "the last conv layer" that
    Grad-CAM uses on ANNs: its spikes are what the head reads.
    """
    from spikingjelly.activation_based import neuron

    layers = spatial_layers(net, x, forward)
    if not layers:
        raise ValueError(
            f"net: no module produces a multi-step feature map [T, B, C, h, w] on an input of shape "
            f"{tuple(x.shape)}; pass target_layers explicitly"
        )
    spiking = [(n, m) for n, m in layers if isinstance(m, neuron.BaseNode)]
    return (spiking or layers)[-1]


def snn_cam(
    net: nn.Module,
    x: torch.Tensor,
    *,
    T: int | None = None,
    target_layers: Sequence[nn.Module] | None = None,
    method: str = "gradcam",
    targets: Sequence[int] | None = None,
    forward: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """Class activation maps of a multi-step SNN, ``[B, H, W]`` float32 in [0, 1].

    Args:
        net: a multi-step SpikingJelly network (``[T, B, C, H, W] -> [T, B, K]``, or see ``forward``).
        x: event frames ``[T, B, C, H, W]``, or a static image batch ``[B, C, H, W]`` with ``T`` given
            (repeated at every step).
        T: time steps for a static ``x`` (must be None or ``x.shape[0]`` for frames).
        target_layers: modules of ``net`` (default: :func:`default_target_layer`).
        method: a key of :data:`METHODS` (``"gradcam"``, ``"gradcam++"``, ``"xgradcam"``, ...).
        targets: one class per sample (default: the predicted class).
        forward: ``f(net, x [T, B, C, H, W]) -> [T, B, K]`` (default ``net(x)``).

    The network is evaluated in eval mode (``grad-cam`` sets it) and put back in its former mode.
    """
    gc = _grad_cam()
    if method not in METHODS:
        raise ValueError(f"method: expected one of {sorted(METHODS)}, got {method!r}")
    if not isinstance(x, torch.Tensor) or x.dim() not in (4, 5):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected frames [T, B, C, H, W] or an image batch [B, C, H, W], got {shape}")
    if x.dim() == 4:
        if not isinstance(T, int) or T < 1:
            raise ValueError(f"T: expected a positive int for a static image batch [B, C, H, W], got {T!r}")
        x = x.unsqueeze(0).expand(T, *x.shape).contiguous()
    elif T is not None and T != x.shape[0]:
        raise ValueError(f"T: expected None or {x.shape[0]} (the frames' time steps), got {T!r}")
    T = int(x.shape[0])
    x = x.detach()
    if target_layers is None:
        target_layers = [default_target_layer(net, x, forward)[1]]
    target_layers = list(target_layers)
    if not target_layers or not all(isinstance(m, nn.Module) for m in target_layers):
        raise ValueError(f"target_layers: expected a non-empty list of modules of net, got {target_layers!r}")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = getattr(gc, METHODS[method])
    model = SNNImageClassifier(net, T, forward)
    was_training = net.training
    cam_targets = None if targets is None else [ClassifierOutputTarget(int(c)) for c in targets]
    if cam_targets is not None and len(cam_targets) != x.shape[1]:
        raise ValueError(f"targets: expected one class per sample ({x.shape[1]}), got {len(cam_targets)}")
    try:
        with cls(model=model, target_layers=target_layers, reshape_transform=multistep_reshape(T)) as cam:
            maps = cam(input_tensor=fold_time(x), targets=cam_targets)
    finally:
        net.train(was_training)
        functional.reset_net(net)
    return np.asarray(maps, dtype=np.float32)
