"""Response schemas (both of Gemini's forms) and an instance conforming to one, filled
from content lines (read as a page by `lines`).

Gemini's OpenAPI subset (`responseSchema`: `type` OBJECT/ARRAY/STRING/INTEGER/NUMBER/
BOOLEAN, `nullable`, `enum`, `properties`, `propertyOrdering`, `items`, `anyOf`) and plain
JSON Schema (`responseJsonSchema`: lower-case or list `type`, `$ref`/`$defs`, `anyOf`/
`oneOf`/`allOf`, `const`) are read into one `Node` tree; `instance()` fills it:

- an array gets one item per row (`Content.rows`: the lines with cells " | " if any
  line has some, else every non-empty line; only rows X..Y when the prompt asked for
  `lignes X à Y`);
- in a row, an object's properties consume the cells in property order: a scalar
  (string, number, enum) takes one cell; an array of objects takes one cell split on
  " ; " into items, each item split on " / " into the item's scalar properties in order;
  an array of scalars takes one cell split on " ; "; surplus cells join the last scalar
  property's cell with " | ", surplus " / " fields the item's last one with " / "; an
  empty or missing cell or field is null when nullable, else "" / 0; booleans and
  nested objects take no cell (false, empty);
- an array of strings gets one string per row;
- an object property of the root object whose properties are all scalars (e.g.
  `metadata`) is filled from the header lines `Label : value`: each property from the
  first header whose label's first word, lower-cased without accents, equals the
  property name's first `_`-separated token (`Lot : 1 234 567` → `lot_number`);
  unmatched → null or "";
- a string that is not inside an array gets the whole content;
- booleans are false, except a property whose name says the page is illegible
  (`illisible`, `illegible`, `unreadable`), true when the content was not recognised;
- an enum takes the cell when it is one of its values, else its first value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gemini_simulator.lines import Content as Content
from gemini_simulator.lines import split_cells as split_cells
from gemini_simulator.lines import split_fields, split_items
from gemini_simulator.wire import get_field

NodeType = Literal["object", "array", "string", "integer", "number", "boolean", "null", "any"]
SCALARS = frozenset({"string", "integer", "number", "any"})
ILLEGIBLE_NAMES = re.compile(r"illisible|illegible|unreadable", re.IGNORECASE)
_MAX_DEPTH = 32


class SchemaError(ValueError):
    """The schema cannot be read (unknown type, unresolvable $ref)."""


@dataclass(frozen=True, slots=True)
class Node:
    type: NodeType
    nullable: bool = False
    enum: tuple[Any, ...] = ()
    properties: tuple[tuple[str, Node], ...] = ()
    items: Node | None = None


_TYPES: dict[str, NodeType] = {
    "object": "object",
    "array": "array",
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
}


def _type_name(raw: Any) -> NodeType | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise SchemaError(f"schema type must be a string (got {raw!r})")
    name = raw.lower()
    if name == "type_unspecified":
        return None
    if name not in _TYPES:
        raise SchemaError(f"unknown schema type {raw!r}")
    return _TYPES[name]


def parse_schema(raw: Mapping[str, Any]) -> Node:
    """Either form; `$ref`s resolve against the root's `$defs` / `definitions`."""
    return _Parser(raw).node(raw, 0)


class _Parser:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def _ref(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise SchemaError(f"only local $ref are supported (got {ref!r})")
        target: Any = self.root
        for key in ref[2:].split("/"):
            key = key.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, Mapping) or key not in target:
                raise SchemaError(f"unresolvable $ref {ref!r}")
            target = target[key]
        if not isinstance(target, Mapping):
            raise SchemaError(f"$ref {ref!r} is not a schema")
        return target

    def node(self, raw: Any, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise SchemaError("schema nested too deep (recursive $ref?)")
        if raw is True or raw == {}:
            return Node("any")
        if not isinstance(raw, Mapping):
            raise SchemaError(f"a schema must be an object (got {raw!r})")
        ref = raw.get("$ref")
        if isinstance(ref, str):
            target = self._ref(ref)
            node = self.node(target, depth + 1)
            return _with_nullable(node, bool(raw.get("nullable")))
        nullable = bool(raw.get("nullable"))
        for key in ("anyOf", "oneOf"):
            branches = get_field(raw, key)
            if isinstance(branches, list) and branches:
                return self._union(raw, branches, nullable, depth)
        all_of = get_field(raw, "allOf")
        if isinstance(all_of, list) and len(all_of) >= 1:
            return _with_nullable(self.node(all_of[0], depth + 1), nullable)
        enum = tuple(raw["enum"]) if isinstance(raw.get("enum"), list) else ()
        if "const" in raw:
            enum = (raw["const"],)
        if None in enum:
            nullable = True
            enum = tuple(v for v in enum if v is not None)
        raw_type = raw.get("type")
        if isinstance(raw_type, list):
            names = [_type_name(t) for t in raw_type]
            nullable = nullable or "null" in names
            concrete = [n for n in names if n not in (None, "null")]
            node_type: NodeType | None = concrete[0] if concrete else "null"
        else:
            node_type = _type_name(raw_type)
        if node_type is None:
            if isinstance(raw.get("properties"), Mapping):
                node_type = "object"
            elif "items" in raw:
                node_type = "array"
            elif enum:
                node_type = "string"
            else:
                node_type = "any"
        if node_type == "object":
            return Node("object", nullable, enum, self._properties(raw, depth))
        if node_type == "array":
            items = raw.get("items")
            item_node = self.node(items, depth + 1) if items is not None else Node("any")
            return Node("array", nullable, enum, items=item_node)
        return Node(node_type, nullable, enum)

    def _union(
        self, raw: Mapping[str, Any], branches: list[Any], nullable: bool, depth: int
    ) -> Node:
        nodes = [self.node(b, depth + 1) for b in branches]
        nullable = nullable or any(n.type == "null" or n.nullable for n in nodes)
        concrete = [n for n in nodes if n.type != "null"]
        if not concrete:
            return Node("null", True)
        return _with_nullable(concrete[0], nullable)

    def _properties(self, raw: Mapping[str, Any], depth: int) -> tuple[tuple[str, Node], ...]:
        props = raw.get("properties")
        if not isinstance(props, Mapping):
            return ()
        ordering = get_field(raw, "propertyOrdering")
        names: list[str] = []
        if isinstance(ordering, list):
            names = [n for n in ordering if isinstance(n, str) and n in props]
        names += [n for n in props if n not in names]
        return tuple((name, self.node(props[name], depth + 1)) for name in names)


def _with_nullable(node: Node, nullable: bool) -> Node:
    if not nullable or node.nullable:
        return node
    return Node(node.type, True, node.enum, node.properties, node.items)


# -- instances -------------------------------------------------------------------------------


def instance(node: Node, content: Content) -> Any:
    """A value conforming to `node`, filled from `content`."""
    return _whole(node, content, name="", root=True)


def empty(node: Node) -> Any:
    """The smallest conforming value: empty arrays and strings, zeros, false, nulls."""
    if node.type == "boolean":
        return False
    if node.nullable and node.type not in ("object", "array"):
        return None
    if node.type == "object":
        return {name: empty(child) for name, child in node.properties}
    if node.type == "array":
        return []
    return _scalar(node, "")


def _whole(node: Node, content: Content, name: str, root: bool = False) -> Any:
    if node.type == "object":
        return {
            key: _header_object(child, content)
            if root and _is_header_object(child)
            else _whole(child, content, key)
            for key, child in node.properties
        }
    if node.type == "array":
        assert node.items is not None
        return [_row(node.items, line) for line in content.rows]
    if node.type == "boolean":
        return bool(content.illegible and ILLEGIBLE_NAMES.search(name))
    if node.type in ("string", "any"):
        return _scalar(node, content.text)
    return empty(node)


def _is_header_object(node: Node) -> bool:
    return (
        node.type == "object"
        and bool(node.properties)
        and all(child.type in SCALARS for _, child in node.properties)
    )


def _header_object(node: Node, content: Content) -> dict[str, Any]:
    return {key: _scalar(child, content.header_value(key)) for key, child in node.properties}


def _takes_cell(node: Node) -> bool:
    return node.type in SCALARS or node.type == "array"


def _joined(parts: list[str], width: int, last: int, separator: str) -> list[str]:
    """`parts` fitted to `width` slots: the surplus joins slot `last` with `separator`."""
    surplus = len(parts) - width
    if surplus <= 0 or last < 0:
        return parts
    return [
        *parts[:last],
        separator.join(parts[last : last + surplus + 1]),
        *parts[last + surplus + 1 :],
    ]


def _object_from(node: Node, parts: list[str], separator: str) -> dict[str, Any]:
    """An object whose cell-taking properties take `parts` in order (see the module doc)."""
    takers = [(key, child) for key, child in node.properties if _takes_cell(child)]
    scalars = [i for i, (_, child) in enumerate(takers) if child.type in SCALARS]
    parts = _joined(parts, len(takers), scalars[-1] if scalars else -1, separator)
    filled = dict(zip((key for key, _ in takers), parts, strict=False))
    value: dict[str, Any] = {}
    for key, child in node.properties:
        if child.type in SCALARS:
            value[key] = _scalar(child, filled.get(key, ""))
        elif child.type == "array":
            value[key] = _array_cell(child, filled.get(key, ""))
        else:
            value[key] = empty(child)
    return value


def _array_cell(node: Node, cell: str) -> list[Any]:
    """One cell as an array: items split on " ; ", an object's fields on " / "."""
    assert node.items is not None
    item = node.items
    if item.type == "object":
        return [_item_object(item, text) for text in split_items(cell)]
    if item.type in SCALARS:
        return [_scalar(item, text) for text in split_items(cell)]
    return []


def _item_object(node: Node, text: str) -> dict[str, Any]:
    """An item of an array cell: its scalar properties from the " / " fields."""
    scalar_node = Node(
        "object",
        node.nullable,
        node.enum,
        tuple((k, c) for k, c in node.properties if c.type in SCALARS),
    )
    filled = _object_from(scalar_node, split_fields(text), " / ")
    return {
        key: filled[key] if child.type in SCALARS else empty(child)
        for key, child in node.properties
    }


def _row(node: Node, line: str) -> Any:
    if node.type == "object":
        return _object_from(node, split_cells(line), " | ")
    if node.type == "array":
        assert node.items is not None
        return (
            [_scalar(node.items, cell) for cell in split_cells(line)]
            if node.items.type in SCALARS
            else []
        )
    if node.type == "boolean":
        return False
    if node.type == "null":
        return None
    return _scalar(node, line.strip())


_NUMBER = re.compile(r"[-+]?(?:\d[\d\s]*)?[.,]?\d+(?:[eE][-+]?\d+)?")


def _scalar(node: Node, text: str) -> Any:
    """`text` as the node's scalar type (booleans: false; objects/arrays: empty)."""
    if node.type in ("object", "array"):
        return empty(node)
    if node.type == "boolean":
        return False
    if node.type == "null":
        return None
    if node.enum:
        for value in node.enum:
            if str(value) == text:
                return value
        if not text and node.nullable:
            return None
        return node.enum[0]
    if node.type in ("integer", "number"):
        number = _parse_number(text, integer=node.type == "integer")
        if number is None:
            return None if node.nullable else 0
        return number
    if not text and node.nullable:
        return None
    return text


def _parse_number(text: str, *, integer: bool) -> int | float | None:
    match = _NUMBER.search(text)
    if match is None:
        return None
    literal = re.sub(r"\s", "", match.group(0)).replace(",", ".")
    try:
        value = float(literal)
    except ValueError:
        return None
    if integer:
        return int(value)
    return (
        int(value)
        if value.is_integer() and "." not in literal and "e" not in literal.lower()
        else value
    )


def conforms(node: Node, value: Any) -> bool:
    """Whether `value` fits `node` (used by tests and as the generator's own check)."""
    if value is None:
        return node.nullable or node.type in ("null", "any")
    if node.enum and value not in node.enum:
        return False
    if node.type == "object":
        return isinstance(value, Mapping) and all(
            key in value and conforms(child, value[key]) for key, child in node.properties
        )
    if node.type == "array":
        assert node.items is not None
        return (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and all(conforms(node.items, v) for v in value)
        )
    if node.type == "string":
        return isinstance(value, str)
    if node.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if node.type == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if node.type == "boolean":
        return isinstance(value, bool)
    return node.type != "null"
