"""yamlsource: YAML with a line for every value, errors as file:line: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from haprotect.errors import HaprotectError, InputError, PolicyError
from haprotect.yamlsource import format_loc, parse_yaml, read_yaml


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    size: int = 0


class Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item] = Field(min_length=1)
    tags: dict[str, int | str] = Field(default_factory=dict)


TEXT = """\
# comment
items:
  - name: a
    size: 1
  - name: b
tags:
  x: 1
"""


def test_lines_of_entries_and_items() -> None:
    doc = parse_yaml(TEXT, "f.yaml")
    assert doc.data == {"items": [{"name": "a", "size": 1}, {"name": "b"}], "tags": {"x": 1}}
    assert doc.line_of(()) == 2
    assert doc.line_of(("items",)) == 2
    assert doc.line_of(("items", 1)) == 5
    assert doc.line_of(("items", 0, "size")) == 4
    assert doc.line_of(("items", 1, "size")) == 5  # missing: nearest ancestor
    assert doc.line_of(("tags", "x")) == 7


def test_locate_and_error_at() -> None:
    doc = parse_yaml(TEXT, "f.yaml", error=PolicyError)
    assert doc.locate(("items", 1, "name"), "bad") == "f.yaml:5: items[1].name: bad"
    assert doc.locate((), "bad") == "f.yaml:2: bad"
    error = doc.error_at(("tags", "x"), "bad")
    assert isinstance(error, PolicyError)
    assert str(error) == "f.yaml:7: tags.x: bad"


def test_format_loc() -> None:
    assert format_loc(("a", 0, "b", 12)) == "a[0].b[12]"
    assert format_loc(()) == ""


def test_validate_ok() -> None:
    assert parse_yaml(TEXT, "f.yaml").validate(Doc).items[1].name == "b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("items:\n  - name: a\n    size: big\n", "f.yaml:3: items[0].size: input should be"),
        ("items:\n  - size: 1\n", "f.yaml:2: items[0].name: field required"),
        ("items:\n  - name: a\n    colour: red\n", "f.yaml:3: items[0].colour: unknown field"),
        ("items: []\n", "f.yaml:1: items: list should have at least 1 item"),
        ("[1, 2]\n", "f.yaml:1: expected a mapping"),
        ("items: {name: a}\n", "f.yaml:1: items: expected a list"),
        # union member tags (int, str) are not part of the field path
        ("items: [{name: a}]\ntags:\n  x: [1]\n", "f.yaml:3: tags.x: input should be"),
    ],
)
def test_validation_errors(text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_yaml(text, "f.yaml").validate(Doc)
    assert str(caught.value).startswith(expected)


def test_first_error_in_document_order_and_count() -> None:
    text = "tags:\n  x: [1]\nitems:\n  - size: 1\n  - name: b\n    size: x\n"
    with pytest.raises(InputError) as caught:
        parse_yaml(text, "f.yaml").validate(Doc)
    message = str(caught.value)
    assert message.startswith("f.yaml:2: tags.x: ")
    assert message.endswith("(and 3 more errors)")


def test_empty_document() -> None:
    with pytest.raises(InputError, match=r"^f\.yaml: empty document$"):
        parse_yaml("# only a comment\n", "f.yaml").validate(Doc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\n b: 2\n", "f.yaml:2: malformed YAML: mapping values are not allowed here"),
        ("a:\n\t- 1\n", "f.yaml:2: malformed YAML: found character '\\t' that cannot start"),
        ("a: 1\nb: \x07\n", "f.yaml:2: malformed YAML: special characters are not allowed"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2: malformed YAML: but found another document"),
        ("a: 1\nb: 2\na: 3\n", "f.yaml:3: a: duplicate key (first at line 1)"),
        ("l:\n  - {k: 1, k: 2}\n", "f.yaml:2: l[0].k: duplicate key (first at line 2)"),
        ("a: &x [1, *x]\n", "f.yaml:1: malformed YAML: an alias refers to itself"),
        ("? [1]\n: 2\n", "f.yaml:1: malformed YAML: found unhashable key"),
    ],
)
def test_malformed(text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_yaml(text, "f.yaml")
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_billion_laughs_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(InputError, match="values once aliases are expanded"):
        parse_yaml("\n".join(lines) + "\n", "f.yaml")


def test_merge_keys_and_aliases() -> None:
    text = "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nn: *b\n"
    doc = parse_yaml(text, "f.yaml")
    assert doc.data["m"] == {"x": 1, "y": 3}
    assert doc.line_of(("m", "y")) == 4  # the override, not a duplicate
    assert doc.line_of(("m", "x")) == 1  # where the merged key is written
    assert doc.line_of(("n", "x")) == 5  # through an alias: at the alias


def test_read_yaml(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_bytes(b"\xef\xbb\xbfitems:\n  - name: a\n")
    assert read_yaml(path).validate(Doc).items[0].name == "a"
    assert read_yaml(path, origin="shown").origin == "shown"
    path.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(InputError, match=r"f\.yaml:2: not UTF-8 text$"):
        read_yaml(path)
    with pytest.raises(HaprotectError, match=r"nope\.yaml: cannot read: "):
        read_yaml(tmp_path / "nope.yaml")


RANGE = "integers have 64 bits, up to 9223372036854775807 (quote a value meant as text)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a:\n  b: " + "1" * 5000 + "\n",
            f"f.yaml:2: a.b: integer out of range (5000 digits): {RANGE}",
        ),
        (
            "l: [1, " + "9" * 4301 + "]\n",
            f"f.yaml:1: l[1]: integer out of range (4301 digits): {RANGE}",
        ),
        ("a: 9223372036854775808\n", f"f.yaml:1: a: integer out of range: {RANGE}"),
        ("a: -9223372036854775809\n", f"f.yaml:1: a: integer out of range: {RANGE}"),
        ("a: 0x" + "f" * 17 + "\n", f"f.yaml:1: a: integer out of range: {RANGE}"),
        ("a: " + ":".join(["59"] * 20) + "\n", f"f.yaml:1: a: integer out of range: {RANGE}"),
        ("? " + "7" * 5000 + "\n: x\n", f"f.yaml:1: integer out of range (5000 digits): {RANGE}"),
        ("a: 1.0e+999\n", "f.yaml:1: a: number too large (write .inf for infinity)"),
        (
            "a:\n  - 2024-13-01\n",
            "f.yaml:2: a[0]: invalid date '2024-13-01': month must be in 1..12",
        ),
    ],
)
def test_numbers_and_dates_no_input_can_mean_are_one_line(text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_yaml(text, "f.yaml")
    assert str(caught.value) == expected


def test_numbers_in_range_are_read_as_yaml_reads_them() -> None:
    text = "a: [9223372036854775807, -9223372036854775808, 0x1f, 1_000, 1:30, .inf, 2024-02-29]\n"
    a = parse_yaml(text, "f.yaml").data["a"]
    assert a[:6] == [2**63 - 1, -(2**63), 31, 1000, 90, float("inf")]
    assert str(a[6]) == "2024-02-29"


PLAIN = """\
name: web
count: 3
ratio: 0.5
enabled: true
none: null
when: 2026-12-08
list: [1, two, {three: 3}]
shared: &s {a: 1}
again: *s
nested:
  deep:
    - x: 1
      y: "2"
"""


def test_a_plain_document_is_built_as_pyyaml_builds_it_and_still_knows_its_lines() -> None:
    doc = parse_yaml(PLAIN, "f.yaml")
    assert doc.data == yaml.safe_load(PLAIN)
    assert doc.data["again"] is doc.data["shared"]
    assert doc.line_of(("nested", "deep", 0, "y")) == 13
    assert doc.line_of(("list", 2, "three")) == 7
    assert doc.lines[("again",)] == 9 and len(doc.lines) == 20
