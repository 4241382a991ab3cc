"""Named-layer feature taps: get a layer's output from a model without editing its code.

Forward hooks work the same on SpikingJelly and torchvision models (and under DDP, since the hook sits
on the inner module). torchvision's ``create_feature_extractor`` needs FX tracing, which
SpikingJelly's stateful neurons (state-dependent Python branches) do not reliably survive, so hooks are the one mechanism here; :func:`resolve_layer` adds the
clear error on a wrong name that ``get_submodule`` lacks.
"""

from __future__ import annotations

import difflib
import functools

import torch
import torch.nn as nn

__all__ = ["FeatureTap", "resolve_layer", "layer_names", "check_reset"]


def layer_names(model: nn.Module) -> list[str]:
    """Every named submodule of ``model`` (dotted names, as ``named_modules`` gives them)."""
    return [n for n, _ in model.named_modules() if n]


def resolve_layer(model: nn.Module, name: str, *, arg: str = "layer") -> nn.Module:
    """``model``'s submodule called ``name`` (e.g. ``'layer4'``, ``'features.8'``), or a clear error."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{arg}: expected a non-empty layer name, got {name!r}")
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    names = layer_names(model)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    top = sorted({n.split(".")[0] for n in names})
    hint = f"close matches: {close}" if close else f"top-level layers: {top[:20]}"
    raise KeyError(f"{arg}: {type(model).__name__} has no layer named {name!r}; {hint}")


def _stateful_multistep(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``model``'s SpikingJelly stateful modules (neurons ...): ``(name, module)`` pairs."""
    from spikingjelly.activation_based import base

    return [(n, m) for n, m in model.named_modules() if isinstance(m, base.MemoryModule)]


def check_reset(model: nn.Module, stateful: list[tuple[str, nn.Module]] | None = None) -> None:
    """Raise ``RuntimeError`` when a multi-step SpikingJelly module of ``model`` still holds a state that
    carries an autograd graph, i.e. the model ran (with gradients) and was not reset since.

    The next forward would start from that state, and its backward would reach into the earlier, freed
    graph: torch then fails with "Trying to backward through the graph a second time ... retain_graph=True",
    which points at the wrong fix. A multi-step network sees the whole sequence in one call, so its state
    is never meant to carry over; single-step modules (``step_mode='s'``, stepped once per time step) and
    states without a graph (after ``reset_net``, under ``no_grad``, or detached) pass. Cost: one look at
    each stateful module's memories.
    """
    for name, m in _stateful_multistep(model) if stateful is None else stateful:
        if getattr(m, "step_mode", "s") != "m":
            continue
        for key, value in getattr(m, "_memories", {}).items():
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                raise RuntimeError(
                    f"{type(model).__name__}: the multi-step module {name or type(m).__name__!r} still holds its "
                    f"state {key!r} from the previous forward, with that forward's autograd graph: call "
                    "spikingjelly.activation_based.functional.reset_net(model) after every batch (each "
                    "training step) before the next forward"
                )


def _reset_pre_hook(stateful, module, args) -> None:
    check_reset(module, stateful)


class FeatureTap:
    """Records the output of one named layer at every forward.

    >>> tap = FeatureTap(net, "layer4")
    >>> logits = net(x_seq)
    >>> feat = tap.pop()        # [T, B, C, H, W] for a multi-step SpikingJelly net
    >>> tap.remove()

    ``pop`` returns the last output and clears it, so a stale feature from an earlier batch is never
    reused silently (an error says the layer did not run). Also a context manager (removes the hook).
    ``detach=True`` stores a detached tensor (for teachers).

    On a SpikingJelly model, every forward first runs :func:`check_reset` (``check_reset=False`` turns it
    off): a multi-step student stepped again without ``functional.reset_net`` gets an error naming it.
    """

    def __init__(
        self, model: nn.Module, name: str, *, detach: bool = False, check_reset: bool = True
    ) -> None:
        self.name = name
        self.detach = detach
        self.module = resolve_layer(model, name)
        self._out: torch.Tensor | None = None
        self._handle = self.module.register_forward_hook(self._hook)
        stateful = _stateful_multistep(model) if check_reset else []
        self._reset_handle = (
            model.register_forward_pre_hook(functools.partial(_reset_pre_hook, stateful))
            if stateful
            else None
        )

    def _hook(self, module, inputs, output):
        if isinstance(output, (tuple, list)):
            output = output[0]
        self._out = output.detach() if self.detach else output

    def pop(self) -> torch.Tensor:
        if self._out is None:
            raise RuntimeError(
                f"FeatureTap({self.name!r}): the layer did not run since the last pop(); "
                "call the model's forward first (and check that the layer is on the forward path)"
            )
        out, self._out = self._out, None
        return out

    def clear(self) -> None:
        self._out = None

    def remove(self) -> None:
        self._handle.remove()
        if self._reset_handle is not None:
            self._reset_handle.remove()
        self._out = None

    def __enter__(self) -> FeatureTap:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"FeatureTap({self.name!r}, module={type(self.module).__name__})"
