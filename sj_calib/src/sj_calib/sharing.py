"""Give every *use* of a shared activation module its own module, in place.

torchvision's ``BasicBlock`` calls one ``self.relu`` twice, and a ``nn.Sequential`` may hold one ReLU instance
under several keys. Swapped for QCFS and converted, such a module would be one spiking layer serving several
layers: one threshold for two activation distributions, merged firing rates and offset histograms, and a
network depth counted too low. :func:`untie_shared` splits both kinds of sharing:

* the same instance under several attribute names gets a copy per name;
* a module whose ``forward`` calls one child activation several times is traced with ``torch.fx`` (its
  children as leaves) and replaced, inside its parent, by a ``GraphModule`` of the same class name whose
  every call site has its own copy (``relu``, ``relu_1``, ...). Only modules with an activation child are
  traced; one that cannot be traced (data-dependent control flow) is left as it is, with a warning.

Why ``torch.fx``: a module's ``forward`` is code; which attribute it calls how often is only visible by
tracing it, and fx is PyTorch's own tracer (SpikingJelly has none).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable

from torch import fx, nn

__all__ = ["untie_shared"]

#: containers whose forward calls every child once, in order (no tracing needed; fold_batchnorm needs them)
_PLAIN = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class _ChildrenAsLeaves(fx.Tracer):
    """Traces one module's own ``forward``: its direct children are not traced into."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return "." not in qualname or super().is_leaf_module(m, qualname)


def _untie_attributes(model: nn.Module, types, copy_fn, seen: set, walked: set) -> int:
    n = 0
    if id(model) in walked:  # a shared container: its children are one set of modules, untie them once
        return 0
    walked.add(id(model))
    for key, child in list(model._modules.items()):
        if child is None:
            continue
        if isinstance(child, types):
            if id(child) in seen:
                model._modules[key] = copy_fn(child)
                n += 1
            seen.add(id(model._modules[key]))
        else:
            n += _untie_attributes(child, types, copy_fn, seen, walked)
    return n


def _shared_calls(module: nn.Module, name: str, types):
    """``(graph, call nodes)`` when ``module``'s forward calls a direct child of ``types`` more than once."""
    if isinstance(module, _PLAIN) or not any(isinstance(c, types) for c in module.children()):
        return None
    try:
        graph = _ChildrenAsLeaves().trace(module)
    except Exception as e:  # noqa: BLE001 - fx raises many types; the module is then left as it is
        warnings.warn(
            f"{name or 'model'} ({type(module).__name__}): could not trace its forward to find an "
            f"activation called more than once ({type(e).__name__}: {e}); if it calls one activation "
            "module at several places, give each place its own module",
            stacklevel=4,
        )
        return None
    calls = [
        n
        for n in graph.nodes
        if n.op == "call_module" and "." not in n.target and isinstance(module.get_submodule(n.target), types)
    ]
    counts = Counter(n.target for n in calls)
    return (graph, calls) if any(c > 1 for c in counts.values()) else None


def _rewrite(module: nn.Module, graph, calls, copy_fn) -> tuple[nn.Module, int]:
    """Give every call after the first of each child its own copy; return the ``GraphModule`` and the count."""
    seen: Counter = Counter()
    created = 0
    for node in calls:
        seen[node.target] += 1
        if seen[node.target] == 1:
            continue
        k = seen[node.target] - 1
        while f"{node.target}_{k}" in module._modules:
            k += 1
        new = f"{node.target}_{k}"
        module.add_module(new, copy_fn(module.get_submodule(node.target)))
        node.target = new
        created += 1
    return fx.GraphModule(module, graph, class_name=type(module).__name__), created


def untie_shared(
    model: nn.Module,
    types: type | tuple[type, ...],
    copy_fn: Callable[[nn.Module], nn.Module],
    *,
    replace_root: bool = False,
    name: str = "model",
) -> tuple[nn.Module, int]:
    """Give every use of a module of ``types`` its own module (``copy_fn(shared)``), in place.

    Returns ``(model, number of modules created)``. A submodule whose forward calls one activation at
    several places becomes a ``GraphModule`` (same class name, same submodule names, new ones
    ``<name>_1``, ...). When ``model``'s own ``forward`` does so, ``replace_root=True`` returns a
    ``GraphModule`` in its place; otherwise that is a ``ValueError`` naming ``name`` (``model`` cannot
    change its class in place): give each use its own module there.
    """
    n = _untie_attributes(model, types, copy_fn, set(), set())
    root = _shared_calls(model, "", types)
    if root is not None and not replace_root:
        raise ValueError(
            f"{name}: its own forward ({type(model).__name__}) calls one activation module at several "
            "places and cannot be rewritten in place; give each place its own module (e.g. its own nn.ReLU)"
        )
    done = set()
    # deepest first: a traced module then already holds its untied children
    for pname, parent in reversed(list(model.named_modules())):
        if id(parent) in done:
            continue
        done.add(id(parent))
        for key, child in list(parent._modules.items()):
            found = None if child is None else _shared_calls(child, f"{pname}.{key}" if pname else key, types)
            if found is not None:
                parent._modules[key], created = _rewrite(child, *found, copy_fn)
                n += created
    if root is not None:
        model, created = _rewrite(model, *root, copy_fn)
        n += created
    return model, n
