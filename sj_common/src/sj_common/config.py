"""Typed run configs: YAML files and ``--set a.b=v`` assignments parsed into dataclasses, checked before any work.

A plugin's config is a dataclass whose fields are sections (dataclasses themselves): ``data``, ``model``, a
method section, and ``train`` (:class:`sj_common.engine.TrainConfig`). :func:`parse` turns a YAML mapping
into it, field by field, with type coercion (YAML reads ``1e-4`` as a string: a ``float`` field takes it; an
``int`` field takes ``2.0``). Every error is a :class:`ConfigError` that names the key, where the value came
from (the file, or the flag / ``--set`` that set it) and the expected type::

    config.distill.lamm: unknown key (from --set distill.lamm=0.4); valid keys: alpha, beta, kd_tau, lam, ...
    config.train.lr: expected float, got 'fast' (from sj_bkd/configs/mnist5k.yaml)

A method's defaults live in one place: :func:`section_from` derives a section from the method's own
signature (a loss's ``__init__``, a function such as a plugin's ``calibrate``), so a default is never restated.

A field with ``metadata={"rest": True}`` (type ``dict``) takes the keys no other field names (e.g. a model
factory's keyword arguments, checked by the section's ``__post_init__``).

Nothing here imports torch: ``--help`` and config errors stay fast.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "UsageError",
    "Assignment",
    "available_configs",
    "read_yaml",
    "parse",
    "parse_assignment",
    "apply_assignments",
    "section_from",
    "to_dict",
    "describe_type",
    "default_of",
    "read_signature",
    "read_constant",
    "resolve",
]


class UsageError(ValueError):
    """The user asked for something that cannot run (a missing option or file); the CLI exits with status 2."""


class ConfigError(UsageError):
    """A config value or key is wrong: names the key, where it came from and what was expected."""


@dataclasses.dataclass(frozen=True)
class Assignment:
    """``key`` (dotted, e.g. ``"distill.lam"``) set to ``value`` by ``label`` (``"--set distill.lam=0.4"``)."""

    key: str
    value: Any
    label: str


# ----------------------------------------------------------------------------------------------------------
# YAML files
# ----------------------------------------------------------------------------------------------------------


def available_configs(package: str) -> list[str]:
    """Names of the YAML files shipped in ``<package>/configs/`` (without ``.yaml``)."""
    try:
        folder = resources.files(package) / "configs"
    except ModuleNotFoundError as e:
        raise ValueError(f"package: expected an importable package name, got {package!r}") from e
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_yaml(path_or_name: str | Path, package: str | None = None) -> tuple[dict[str, Any], str]:
    """Read a YAML config: a file path, or a bare name resolved to ``<package>/configs/<name>.yaml``.

    Returns ``(mapping, where)`` with ``where`` the path or packaged name (for error messages). Raises
    :class:`ConfigError` naming the path tried (and, for a packaged name, the available configs) or saying
    that the file is not a YAML mapping.
    """
    path = Path(path_or_name)
    if path.is_file():
        text, where = path.read_text(), str(path)
    elif package is not None and path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        res = resources.files(package) / "configs" / f"{path_or_name}.yaml"
        where = f"{package}/configs/{path_or_name}.yaml"
        if not res.is_file():
            raise ConfigError(
                f"--config: no config {str(path_or_name)!r} in {package}/configs/ and no such file; "
                f"available: {', '.join(available_configs(package)) or '(none)'}"
            )
        text = res.read_text()
    else:
        hint = f" (and it is not a config name of {package})" if package else ""
        raise ConfigError(
            f"--config: expected a YAML config file, got {str(path)!r}, which does not exist{hint}"
        )
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({e})") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data, where


# ----------------------------------------------------------------------------------------------------------
# Types
# ----------------------------------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe_type(tp: Any) -> str:
    """A short human name of a type hint: ``int | None`` -> ``'int or None'``."""
    if tp is Any:
        return "any value"
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("None" if a is type(None) else describe_type(a) for a in typing.get_args(tp))
    if origin in (list, tuple, Sequence):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"a list of {describe_type(args[0])}" if args else "a list"
    if origin in (dict, Mapping) or tp is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__} section)"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    pass


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` or raise :class:`_Mismatch` (nested dataclasses are handled by :func:`parse`)."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        # exact type first (a str stays a str in `str | float`), then coercions in the order written
        for a in args:
            if a is not type(None) and isinstance(a, type) and type(value) is a:
                return value
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a)
            except _Mismatch:
                pass
        raise _Mismatch
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        items = [_coerce(v, args[0]) for v in value] if args else list(value)
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise _Mismatch from None
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _Mismatch
    return value


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass in ``tp`` (``Section`` or ``Section | None``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for a in typing.get_args(tp):
            if dataclasses.is_dataclass(a):
                return a
    return None


def _rest_field(cls: type) -> str | None:
    for f in dataclasses.fields(cls):
        if f.metadata.get("rest"):
            return f.name
    return None


# ----------------------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------------------


def _origin(sources: Mapping[str, str], key: str, default: str) -> str:
    """Where ``key`` came from: the flag that set it or one of its parents, else ``default`` (the file)."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        label = sources.get(".".join(parts[:i]))
        if label:
            return label
    return default


def parse(
    cls: type,
    raw: Mapping[str, Any] | None,
    *,
    where: str = "config",
    sources: Mapping[str, str] | None = None,
    prefix: str = "",
) -> Any:
    """Build dataclass ``cls`` from a mapping, recursively; raise :class:`ConfigError` on any wrong key or value.

    Args:
        cls: the dataclass (its fields' type hints drive the coercion).
        raw: the mapping (a YAML section); ``None`` is an empty mapping.
        where: the file the mapping was read from (for messages).
        sources: dotted key -> the flag that set it (``--set ...``, ``--epochs``), for messages.
        prefix: dotted path of ``raw`` inside the whole config (for messages).
    """
    sources = sources or {}
    raw = {} if raw is None else raw
    name = prefix or "config"
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{name}: expected {describe_type(cls)}, got {raw!r} (from {_origin(sources, prefix, where)})"
        )
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    rest = _rest_field(cls)
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields or key == rest:
            if rest is not None:
                extra[key] = value
                continue
            raise ConfigError(
                f"{dotted}: unknown key (from {_origin(sources, dotted, where)}); "
                f"valid keys here: {', '.join(sorted(k for k in fields if k != rest))}"
            )
        tp = hints[key]
        sub = _dataclass_of(tp)
        if sub is not None and not (value is None and sub is not tp):
            kwargs[key] = parse(sub, value, where=where, sources=sources, prefix=dotted)
            continue
        try:
            kwargs[key] = _coerce(value, tp)
        except _Mismatch:
            raise ConfigError(
                f"{dotted}: expected {describe_type(tp)}, got {value!r} (from {_origin(sources, dotted, where)})"
            ) from None
    if rest is not None:
        kwargs[rest] = extra
    for fname, f in fields.items():
        if fname in kwargs:
            continue
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            sub = _dataclass_of(hints[fname])
            if sub is not None:  # a section left out: all its defaults
                kwargs[fname] = parse(
                    sub, {}, where=where, sources=sources, prefix=f"{prefix}.{fname}".strip(".")
                )
                continue
            dotted = f"{prefix}.{fname}" if prefix else fname
            raise ConfigError(f"{dotted}: missing, expected {describe_type(hints[fname])} (in {where})")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as e:
        # a section's own check (e.g. TrainConfig.__post_init__): name the section and the source of the field
        m = re.match(r"(?:\w+\.)?(\w+):", str(e))
        key = f"{prefix}.{m.group(1)}".strip(".") if m and m.group(1) in fields else prefix
        raise ConfigError(f"{name}: {e} (from {_origin(sources, key, where)})") from e


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"a.b=0.4"`` -> ``("a.b", 0.4)`` (the value read as YAML: numbers, booleans, lists, null)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set: expected KEY=VALUE (e.g. distill.lam=0.4), got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text}: the value is not valid YAML ({e})") from e
    return key.strip(), value


def _check_path(cls: type, key: str, label: str) -> None:
    """Raise :class:`ConfigError` unless ``key`` names a field of ``cls`` (descending through sections)."""
    node: Any = cls
    parts = key.split(".")
    for i, p in enumerate(parts):
        sub = _dataclass_of(node) if node is not None else None
        if sub is None:
            origin = typing.get_origin(node)
            if node is dict or origin in (dict, Mapping) or node is Any:
                return  # free-form mapping (e.g. kwargs): any key
            raise ConfigError(
                f"{key}: {'.'.join(parts[:i])} is not a section, so it has no key {p!r} (from {label})"
            )
        names = {f.name for f in dataclasses.fields(sub) if f.init}
        rest = _rest_field(sub)
        if p not in names or p == rest:
            if rest is not None:
                return
            where = ".".join(parts[:i]) or "the config"
            raise ConfigError(
                f"{key}: unknown key (from {label}); valid keys in {where}: {', '.join(sorted(names))}"
            )
        node = _hints(sub)[p]


def apply_assignments(
    cls: type, raw: Mapping[str, Any], assignments: Iterable[Assignment]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Copy ``raw`` with ``assignments`` applied; returns ``(raw copy, sources)`` for :func:`parse`.

    Each key is checked against ``cls`` first, so a typo (``distill.lamm``) is an error naming it and the
    flag, not a new key.
    """
    out = yaml.safe_load(yaml.safe_dump(dict(raw)))  # deep copy of plain data
    sources: dict[str, str] = {}
    for a in assignments:
        _check_path(cls, a.key, a.label)
        node = out
        *parents, leaf = a.key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[leaf] = a.value
        sources[a.key] = a.label
    return out, sources


# ----------------------------------------------------------------------------------------------------------
# Sections derived from a method's signature, and back to plain data
# ----------------------------------------------------------------------------------------------------------


def section_from(
    name: str,
    *sources: tuple[Callable[..., Any] | str, Sequence[str]]
    | tuple[Callable[..., Any] | str, Sequence[str], Mapping[str, str]],
    extra: Sequence[tuple[str, Any, Any]] = (),
    doc: str | None = None,
) -> type:
    """A config section (dataclass) whose fields and defaults are read from methods' signatures.

    Args:
        name: the dataclass name.
        sources: ``(callable, parameter names)`` or ``(callable, names, {section key: parameter name})``:
            each named parameter of the callable (a class means its ``__init__``) becomes a field with the
            parameter's annotation and default; the mapping renames (``{"coefficient_init": "init"}``).
            The callable may be a reference ``"package.module:Qualified.name"``: its signature is then read
            from the module's source without importing it (:func:`read_signature`), so a config and its
            ``--help`` need no torch.
        extra: ``(field name, type, default)`` for keys that belong to no signature.
        doc: the dataclass docstring.

    The defaults therefore live in the method's code only. A parameter without a default is an error.
    The sources are kept as ``cls.__section_sources__``.
    """
    fields: list[tuple[str, Any, Any]] = []
    for src in sources:
        fn, names = src[0], src[1]
        rename = dict(src[2]) if len(src) > 2 else {}
        params, hints, label = _signature(fn)
        for key in names:
            param = rename.get(key, key)
            if param not in params:
                raise ValueError(f"section_from: {label} has no parameter {param!r}")
            default = params[param]
            if default is inspect.Parameter.empty:
                raise ValueError(f"section_from: {label}({param}) has no default")
            if isinstance(default, _Unreadable):
                raise ValueError(f"section_from: {default!r} is not a literal; pass the callable itself")
            fld = (
                dataclasses.field(default_factory=lambda d=default: type(d)(d))
                if isinstance(default, (list, dict))
                else dataclasses.field(default=default)
            )
            fields.append((key, hints.get(param, Any), fld))
    for key, tp, default in extra:
        fields.append((key, tp, dataclasses.field(default=default)))
    cls = dataclasses.make_dataclass(name, fields)
    cls.__doc__ = doc or f"Config section {name}, derived from " + ", ".join(
        _signature(s[0])[2] for s in sources
    )
    cls.__section_sources__ = tuple(sources)
    return cls


def to_dict(cfg: Any) -> Any:
    """A config (dataclasses, nested) as plain data for ``results.json``; ``rest`` fields are flattened back."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(cfg):
            v = to_dict(getattr(cfg, f.name))
            if f.metadata.get("rest"):
                out.update(v)
            else:
                out[f.name] = v
        return out
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def default_of(fn: Callable[..., Any] | str, param: str) -> Any:
    """The default of ``param`` in ``fn``'s signature (a class means its ``__init__``): one place for a default.

    ``fn`` may be a reference ``"package.module:Qualified.name"`` (read from source, nothing imported, see
    :func:`read_signature`); every such read is recorded in :data:`DEFAULTS_READ` so a test can compare it
    with the imported signature."""
    params, _, label = _signature(fn)
    default = params.get(param, inspect.Parameter.empty)
    if default is inspect.Parameter.empty:
        raise ValueError(f"default_of: {label} has no parameter {param!r} with a default")
    if isinstance(default, _Unreadable):
        raise ValueError(f"default_of: {default!r} is not a literal; pass the callable itself")
    if isinstance(fn, str):
        DEFAULTS_READ.append((fn, param, default))
    return default


# ----------------------------------------------------------------------------------------------------------
# Signatures read from source (no import): config sections and --help without torch
# ----------------------------------------------------------------------------------------------------------

DEFAULTS_READ: list[tuple[str, str | None, Any]] = []
"""``(reference, parameter, default)`` of every :func:`default_of` call that read a reference (parameter
``None``: a :func:`read_constant`)."""


def resolve(ref: str) -> Any:
    """Import the object a ``"package.module:Qualified.name"`` reference names."""
    import importlib

    module, _, qual = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _signature(fn: Callable[..., Any] | str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """``({parameter: default or Parameter.empty}, {parameter: type hint}, label)`` of a callable or reference."""
    if isinstance(fn, str):
        return (*read_signature(fn), fn)
    target = fn.__init__ if inspect.isclass(fn) else fn
    params = {n: p.default for n, p in inspect.signature(target).parameters.items()}
    return params, typing.get_type_hints(target), fn.__qualname__


_SIGNATURES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


def read_signature(ref: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({parameter: default}, {parameter: type hint})`` of ``"package.module:Qualified.name"`` (a class means
    its ``__init__``), read from the module's source with :mod:`ast`; the module is not imported (its package
    is, so package ``__init__`` modules must stay light).

    A default must be a literal (``0.5``, ``"mixed"``, ``None``, ``(1, 2)``) or a module-level name bound to
    one; an annotation is evaluated with the builtins and :mod:`typing`'s names (``float | None``,
    ``Literal[...]``); one naming anything else is ``Any``. A parameter without a default maps to
    ``inspect.Parameter.empty``. Raises ``ValueError`` naming the reference when it cannot be read.
    """
    if ref in _SIGNATURES:
        return _SIGNATURES[ref]
    import ast

    tree, constants, origin, qual = _source(ref)
    body, node = tree.body, None
    for part in qual.split("."):
        node = next(
            (n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part), None
        )
        if node is None:
            raise ValueError(f"reference {ref!r}: no {part!r} in {origin}")
        body = node.body
    if isinstance(node, ast.ClassDef):
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if node is None:
            raise ValueError(f"reference {ref!r}: the class defines no __init__ in its own body")
    args = node.args
    positional = args.posonlyargs + args.args
    pairs = list(zip(positional, [None] * (len(positional) - len(args.defaults)) + list(args.defaults)))
    pairs += list(zip(args.kwonlyargs, args.kw_defaults))
    namespace = {**vars(typing), "Sequence": Sequence, "Mapping": Mapping, "Callable": Callable}
    params: dict[str, Any] = {}
    hints: dict[str, Any] = {}
    for arg, default in pairs:
        if default is None:
            params[arg.arg] = inspect.Parameter.empty
        elif isinstance(default, ast.Name) and default.id in constants:
            params[arg.arg] = constants[default.id]
        else:
            try:
                params[arg.arg] = ast.literal_eval(default)
            except ValueError:
                params[arg.arg] = _Unreadable(ref, arg.arg, ast.unparse(default))
        if arg.annotation is not None:
            try:
                hint = eval(ast.unparse(arg.annotation), dict(namespace))  # noqa: S307 - typing names only
                hints[arg.arg] = eval(hint, dict(namespace)) if isinstance(hint, str) else hint  # noqa: S307
            except Exception:  # noqa: BLE001 - a type of the method's module (a tensor, a module): Any
                hints[arg.arg] = Any
    _SIGNATURES[ref] = (params, hints)
    return params, hints


def _source(ref: str) -> tuple[Any, dict[str, Any], str, str]:
    """``(ast tree, {module-level name: literal value}, file, qualified name)`` of a reference's module."""
    import ast
    import importlib.util

    module, sep, qual = ref.partition(":")
    if not sep or not qual:
        raise ValueError(f"reference: expected 'package.module:Qualified.name', got {ref!r}")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise ValueError(f"reference {ref!r}: no Python source for module {module!r}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), filename=spec.origin)
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and node.value is not None:
                    try:
                        constants[t.id] = ast.literal_eval(node.value)
                    except ValueError:
                        pass
    return tree, constants, spec.origin, qual


def read_constant(ref: str) -> Any:
    """The literal value of a module-level name, ``"package.module:NAME"``, read from source (nothing
    imported), e.g. a method's tuple of modes for a ``--help`` that lists them. Every read is recorded in
    :data:`DEFAULTS_READ` (parameter ``None``) so a test can compare it with the imported value."""
    _, constants, origin, name = _source(ref)
    if name not in constants:
        raise ValueError(f"reference {ref!r}: {name} is not a module-level literal in {origin}")
    DEFAULTS_READ.append((ref, None, constants[name]))
    return constants[name]


class _Unreadable:
    """A default that is not a literal: an error when a config section or :func:`default_of` uses it."""

    def __init__(self, ref: str, param: str, text: str) -> None:
        self.ref, self.param, self.text = ref, param, text

    def __repr__(self) -> str:
        return f"<unreadable default {self.text!r} of {self.ref}({self.param})>"
