"""The settings validator: TOML values taken as TOML types, URL strings converted, every
problem reported once with its key path."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest

from agent.settings import (
    Rule,
    Settings,
    SettingsError,
    as_dict,
    field_names,
    load,
    setting,
    unchecked_copy,
)


def _even(v: int) -> int:
    if v % 2:
        raise ValueError("must be even")
    return v


Code = Annotated[str, Rule(pattern=r"[A-Z]{2}")]


class Inner(Settings):
    level: int = setting(1, ge=0, le=10)
    codes: list[Code] = setting(factory=list)


class Outer(Settings):
    name: str = setting("x", min_length=1, max_length=4)
    ratio: float = setting(0.5, gt=0, lt=1)
    count: int = setting(2, check=_even)
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    point: tuple[float, float] | None = None
    inner: Inner = setting(factory=Inner)
    items: list[Inner] = setting(factory=list)
    low: float | None = None
    high: float | None = None

    def check(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("low above high")


class Required(Settings, frozen=True):
    host: str
    port: int | None = None
    repeat: bool = False


def _megahertz(value: object) -> float:
    text = str(value).strip().lower()
    if not text.endswith("m"):
        raise ValueError("expected a number of MHz such as 1090M")
    return float(text[:-1]) * 1e6


class Tuned(Settings):
    freq: Annotated[float, Rule(parse=_megahertz)] | None = None


def _problems(data: object, cls: type[Settings] = Outer, text: bool = False) -> list[str]:
    with pytest.raises(SettingsError) as err:
        load(cls, data, text=text)
    return [str(p) for p in err.value.problems]


def test_defaults_are_fresh_and_equal():
    a, b = load(Outer, {}), Outer()
    assert a == b and a.inner == Inner() and a.items == [] and a.point is None
    a.inner.codes.append("AB")
    assert Outer().inner.codes == []  # a factory, not one shared list
    assert "Outer(name='x'" in repr(a)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"ratio": 1}, "ratio: must be < 1"),
        ({"ratio": 0}, "ratio: must be > 0"),
        ({"inner": {"level": 11}}, "inner.level: must be <= 10"),
        ({"inner": {"level": -1}}, "inner.level: must be >= 0"),
        ({"name": ""}, "name: must have at least 1 character(s)"),
        ({"name": "hello"}, "name: must have at most 4 characters"),
        ({"count": 3}, "count: must be even"),
        ({"ratio": "half"}, "ratio: expected a number"),
        ({"ratio": True}, "ratio: expected a number"),
        ({"ratio": float("nan")}, "ratio: expected a finite number"),
        ({"ratio": float("inf")}, "ratio: expected a finite number"),
        ({"count": 2.5}, "count: expected an integer"),
        ({"count": "2"}, "count: expected an integer"),
        ({"flag": 1}, "flag: expected true or false"),
        ({"flag": "true"}, "flag: expected true or false"),
        ({"name": 5}, "name: expected a string"),
        ({"mode": "c"}, "mode: expected one of 'a', 'b'"),
        ({"point": [1.0]}, "point: expected 2 items"),
        ({"point": [1.0, "n"]}, "point.1: expected a number"),
        ({"inner": 3}, "inner: expected a table"),
        ({"items": {"level": 1}}, "items: expected a list"),
        ({"items": [{}, {"codes": ["AB", "a1"]}]}, "items.1.codes.1: must match '[A-Z]{2}'"),
        ({"low": 2, "high": 1}, "(top level): low above high"),
        ({"items": [{"levle": 1}]}, "items.0.levle: unknown key; did you mean 'level'?"),
        ({"colour": "red"}, "colour: unknown key"),
    ],
)
def test_a_bad_value_is_named_by_its_path(data, problem):
    assert _problems(data) == [problem]


def test_toml_values_are_taken_as_their_types():
    o = load(Outer, {"ratio": 0.25, "count": 4.0, "flag": True, "point": [1, 2], "low": 3})
    assert (o.ratio, o.count, o.flag, o.point, o.low) == (0.25, 4, True, (1.0, 2.0), 3.0)
    assert type(o.count) is int and type(o.low) is float


def test_every_problem_is_collected_in_one_pass():
    problems = _problems(
        {"ratio": 2, "flag": 0, "inner": {"level": "high", "bogus": 1}, "items": [{"level": 99}]}
    )
    assert problems == [
        "ratio: must be < 1",
        "flag: expected true or false",
        "inner.bogus: unknown key",
        "inner.level: expected an integer",
        "items.0.level: must be <= 10",
    ]


def test_cross_field_rules_of_a_nested_table_carry_its_path():
    class Holder(Settings):
        outer: list[Outer] = setting(factory=list)

    assert _problems({"outer": [{}, {"low": 5, "high": 4}]}, Holder) == ["outer.1: low above high"]


def test_required_fields_and_url_strings():
    assert _problems({}, Required) == ["host: required"]
    r = load(Required, {"host": "h", "port": "30005", "repeat": "on"}, text=True)
    assert r == Required(host="h", port=30005, repeat=True)
    assert hash(r) == hash(Required(host="h", port=30005, repeat=True))  # frozen
    with pytest.raises(AttributeError):
        r.host = "other"  # type: ignore[misc]
    for word, value in (("1", True), ("yes", True), ("TRUE", True), ("0", False), ("off", False)):
        assert load(Required, {"host": "h", "repeat": word}, text=True).repeat is value
    assert _problems({"host": "h", "repeat": "2"}, Required, text=True) == [
        "repeat: expected true or false"
    ]
    assert _problems({"host": "h", "port": "1.5"}, Required, text=True) == [
        "port: expected an integer"
    ]
    o = load(Outer, {"ratio": "0.1", "count": "6", "mode": "b"}, text=True)
    assert (o.ratio, o.count, o.mode) == (0.1, 6, "b")
    assert _problems({"ratio": "inf"}, Outer, text=True) == ["ratio: expected a finite number"]


def test_a_parse_rule_replaces_the_conversion():
    assert load(Tuned, {"freq": "1090M"}, text=True).freq == 1.09e9
    assert load(Tuned, {"freq": None}).freq is None
    assert _problems({"freq": "1090"}, Tuned, text=True) == [
        "freq: expected a number of MHz such as 1090M"
    ]


def test_direct_construction_is_validated_too():
    assert Outer(ratio=0.5, low=2).low == 2.0  # an int where a float is expected
    with pytest.raises(SettingsError, match="ratio: must be < 1"):
        Outer(ratio=5)
    with pytest.raises(SettingsError, match="low above high"):
        Outer(low=2, high=1)


def test_dump_and_copy():
    o = load(Outer, {"items": [{"codes": ["AB"]}], "point": [1, 2]})
    d = as_dict(o, exclude=("name",))
    assert "name" not in d and d["items"] == [{"level": 1, "codes": ["AB"]}]
    assert d["point"] == (1.0, 2.0) and d["inner"] == {"level": 1, "codes": []}
    assert load(Outer, as_dict(o)) == o
    c = unchecked_copy(o, name="much too long")  # not validated: the caller checks it
    assert c.name == "much too long" and o.name == "x" and c.items is o.items
    assert field_names(Required) == ("host", "port", "repeat")
