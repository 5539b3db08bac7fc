"""Typed settings classes validated from a TOML table or a URL query, on the standard library.

The configuration (agent.config) and every source kind's URL options (agent.sources)
are `Settings` subclasses: dataclasses whose annotations say what each key takes and
whose `setting(...)` bounds say how far. `load` checks a whole document in one pass and
raises SettingsError listing every problem with its key path (`filter.max_height_ft`,
`geofence.1.name`), so a technician fixes the file once. pydantic did this before; it
cost 7-8 MiB of a Raspberry Pi's memory and has no wheel for 32-bit Raspberry Pi OS.

Values are taken as TOML gives them: a bool must be true or false, a string stays a
string, an int is accepted where a float is expected (and an integral float where an
int is), no inf or nan. With `text=True` (URL queries) strings are converted to the
field's type: "2" to int, "1"/"true"/"on"/"yes" to bool, and so on.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
from collections.abc import Callable, Mapping
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
    get_type_hints,
)

SettingsT = TypeVar("SettingsT", bound="Settings")
KeyPath = tuple[str | int, ...]
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})  # as pydantic's lax mode read them
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class _Bad:
    """A value that failed: its problem is already recorded."""


_BAD = _Bad()


class Problem(NamedTuple):
    """One refused value: where (key path; list items by index) and why."""

    path: KeyPath
    message: str

    def __str__(self) -> str:
        return f"{'.'.join(str(p) for p in self.path) or '(top level)'}: {self.message}"


class SettingsError(ValueError):
    """Every problem of one document (or one constructor call)."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a value must satisfy beyond its type.

    Attributes:
        ge, gt, le, lt: numeric bounds.
        pattern: a regular expression the whole string must match (fullmatch: a "$"
            would let a trailing newline through).
        min_length, max_length: bounds on len() of a string or list.
        parse: replaces the type's conversion: raw value -> value (a URL option such as
            a sample rate written '2.4M'); ValueError says why not. A settings object
            built directly (TunerOptions(rate=2.4e6)) hands it the parsed value: it must
            take that too.
        check: runs on the converted value (also None) and returns it, possibly
            normalised; ValueError says why not.
        dump: the value as written back by as_dict (a parsed source as its URL).
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    parse: Callable[[Any], Any] | None = None
    check: Callable[[Any], Any] | None = None
    dump: Callable[[Any], Any] | None = None

    def apply(self, value: Any) -> Any:
        if value is not None:
            self._bounds(value)
        return self.check(value) if self.check is not None else value

    def _bounds(self, value: Any) -> None:
        if self.ge is not None and not value >= self.ge:
            raise ValueError(f"must be >= {_number(self.ge)}")
        if self.gt is not None and not value > self.gt:
            raise ValueError(f"must be > {_number(self.gt)}")
        if self.le is not None and not value <= self.le:
            raise ValueError(f"must be <= {_number(self.le)}")
        if self.lt is not None and not value < self.lt:
            raise ValueError(f"must be < {_number(self.lt)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ValueError(f"must match {self.pattern!r}")
        if self.min_length is not None and len(value) < self.min_length:
            raise ValueError(f"must have at least {self.min_length} character(s)")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(f"must have at most {self.max_length} characters")


def _number(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    **rule: Any,
) -> Any:
    """A field with a default (or a factory for a mutable one) and a Rule (bounds etc.)."""
    metadata = {"rule": Rule(**rule)} if rule else {}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass_transform(kw_only_default=True, field_specifiers=(setting, dataclasses.field))
class Settings:
    """Base of a settings class: becomes a keyword-only dataclass, validated when built.

    Subclasses pass `frozen=True` for immutable (hashable) instances; their subclasses
    inherit it. `check` holds rules that span fields.
    """

    def __init_subclass__(cls, *, frozen: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if frozen is None:
            params = getattr(cls, "__dataclass_params__", None)
            frozen = bool(params and params.frozen)
        dataclasses.dataclass(cls, kw_only=True, frozen=frozen)

    def __post_init__(self) -> None:
        # Built directly (tests, benches, a default): the conversions `load` makes, so
        # MqttConfig(health_interval_s=1) holds a float and a bad value is refused here.
        problems: list[Problem] = []
        for name, hint in _fields(type(self)).items():
            value = _convert(hint, getattr(self, name), (name,), problems, False)
            if value is not _BAD:
                object.__setattr__(self, name, value)
        if not problems:
            try:
                self.check()
            except ValueError as err:
                problems.append(Problem((), str(err)))
        if problems:
            raise SettingsError(problems)

    def check(self) -> None:
        """Rules across fields (both lat and lon, or neither); ValueError says which."""


_FIELDS: dict[type, dict[str, Any]] = {}


def _fields(cls: type) -> dict[str, Any]:
    """Field name -> its type hint with the field's Rule folded in (Annotated)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls, include_extras=True)
        found = {}
        for f in dataclasses.fields(cls):
            rule = f.metadata.get("rule")
            found[f.name] = hints[f.name] if rule is None else Annotated[hints[f.name], rule]
        _FIELDS[cls] = found
    return found


def field_names(cls: type[Settings]) -> tuple[str, ...]:
    """The keys `cls` takes (a URL's query is checked against them before `load`)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def load(cls: type[SettingsT], data: Any, *, text: bool = False) -> SettingsT:
    """`cls` from a parsed TOML table (or, `text=True`, URL query strings).

    Raises:
        SettingsError: every problem found, each with its key path.
    """
    problems: list[Problem] = []
    value = _convert(cls, data, (), problems, text)
    if isinstance(value, _Bad):
        raise SettingsError(problems)
    return value  # type: ignore[no-any-return]


def as_dict(obj: Settings, exclude: tuple[str, ...] | frozenset[str] = ()) -> dict[str, Any]:
    """The fields as plain values (nested settings as dicts), as a file would hold them."""
    return {
        name: _dump(hint, getattr(obj, name))
        for name, hint in _fields(type(obj)).items()
        if name not in exclude
    }


def unchecked_copy(obj: SettingsT, **changes: Any) -> SettingsT:
    """A copy with `changes`, not validated (a command-line override that is checked,
    with a message of its own, where it is used)."""
    new = copy.copy(obj)
    for name, value in changes.items():
        object.__setattr__(new, name, value)
    return new


def _load(
    cls: type[Settings], data: Mapping[str, Any], path: KeyPath, problems: list[Problem], text: bool
) -> Any:
    fields = _fields(cls)
    before = len(problems)
    for key in data:
        if key not in fields:
            problems.append(Problem((*path, key), _unknown_key(str(key), fields)))
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = _convert(fields[f.name], data[f.name], (*path, f.name), problems, text)
            if value is not _BAD:
                values[f.name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            problems.append(Problem((*path, f.name), "required"))
    if len(problems) > before:
        return _BAD
    # Built without __init__, whose __post_init__ would convert the converted values again.
    obj = cls.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in values:
            value = values[f.name]
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = f.default
        object.__setattr__(obj, f.name, value)
    try:
        obj.check()
    except ValueError as err:
        problems.append(Problem(path, str(err)))
        return _BAD
    return obj


def _unknown_key(key: str, fields: Mapping[str, Any]) -> str:
    """`unknown key`, with the nearest real key when the name looks like a typo of one."""
    near = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
    return f"unknown key; did you mean {near[0]!r}?" if near else "unknown key"


def _convert(tp: Any, value: Any, path: KeyPath, problems: list[Problem], text: bool) -> Any:
    """`value` as type `tp` (its Rules applied), or _BAD with the problem recorded."""
    rules: list[Rule] = []
    if get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
        rules = [m for m in meta if isinstance(m, Rule)]
    parse = next((r.parse for r in rules if r.parse is not None), None)
    try:
        value = parse(value) if parse is not None else _typed(tp, value, path, problems, text)
        if value is _BAD:
            return _BAD
        for rule in rules:
            value = rule.apply(value)
    except ValueError as err:
        problems.append(Problem(path, str(err)))
        return _BAD
    return value


def _typed(tp: Any, value: Any, path: KeyPath, problems: list[Problem], text: bool) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _union(get_args(tp), value, path, problems, text)
    if origin is Literal:
        return _literal(get_args(tp), value, text)
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list")
        (item,) = get_args(tp) or (Any,)
        items = [_convert(item, v, (*path, i), problems, text) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else items
    if origin is tuple:
        return _tuple(get_args(tp), value, path, problems, text)
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Settings):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ValueError("expected a table")
        return _load(tp, value, path, problems, text)
    if text and isinstance(value, str) and tp in (bool, int, float):
        return _from_text(tp, value)
    return _scalar(tp, value)


def _union(
    members: tuple[Any, ...], value: Any, path: KeyPath, problems: list[Problem], text: bool
) -> Any:
    if value is None and type(None) in members:
        return None
    first: list[Problem] | None = None
    for member in members:
        if member is type(None):
            continue
        tried: list[Problem] = []
        result = _convert(member, value, path, tried, text)
        if result is not _BAD:
            return result
        first = tried if first is None else first
    problems.extend(first or [])
    return _BAD


def _literal(choices: tuple[Any, ...], value: Any, text: bool) -> Any:
    for choice in choices:
        if type(value) is type(choice) and value == choice:
            return choice
        if text and isinstance(value, str) and value == str(choice):
            return choice
    raise ValueError(f"expected one of {', '.join(repr(c) for c in choices)}")


def _tuple(
    items: tuple[Any, ...], value: Any, path: KeyPath, problems: list[Problem], text: bool
) -> Any:
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list")
    if len(items) == 2 and items[1] is Ellipsis:
        items = (items[0],) * len(value)
    elif len(value) != len(items):
        raise ValueError(f"expected {len(items)} items")
    out = [
        _convert(t, v, (*path, i), problems, text)
        for i, (t, v) in enumerate(zip(items, value, strict=True))
    ]
    return _BAD if any(v is _BAD for v in out) else tuple(out)


def _from_text(tp: type, value: str) -> Any:
    """A URL query value as bool, int or float."""
    t = value.strip().lower()
    if tp is bool:
        if t in _TRUE or t in _FALSE:
            return t in _TRUE
        raise ValueError("expected true or false")
    try:
        number = int(t) if tp is int else float(t)
    except ValueError:
        raise ValueError("expected an integer" if tp is int else "expected a number") from None
    return _scalar(tp, number)


def _scalar(tp: Any, value: Any) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("expected an integer")
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError("expected a number")
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError("expected a string")
    if tp is type(None):
        if value is None:
            return None
        raise ValueError("expected no value")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ValueError(f"expected {tp.__name__}")
    return value


def _dump(tp: Any, value: Any) -> Any:
    if get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
        for rule in meta:
            if isinstance(rule, Rule) and rule.dump is not None and value is not None:
                return rule.dump(value)
    if isinstance(value, Settings):
        return as_dict(value)
    if isinstance(value, list | tuple):
        args = [a for a in get_args(tp) if a is not type(None)]
        item = args[0] if get_origin(tp) is list and args else Any
        out = [_dump(item, v) for v in value]
        return out if isinstance(value, list) else tuple(out)
    return value
