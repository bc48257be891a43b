"""Build position-carrying values from libyaml's event stream, within limits a spec never hits.

Why events and not `yaml.compose`: PyYAML's composer (in C and in Python alike) recurses once per
nesting level, so a deeply nested file can exhaust the C stack or raise RecursionError before any
check of ours runs, and it resolves aliases to shared nodes that a naive walk expands again at
every use (a 500-byte "billion laughs" file expands to 10^9 values). Building from events needs
no recursion: a stack of open collections, checked against MAX_DEPTH, and a running count of the
values the document stands for, in which an alias costs the size of what it repeats, so an alias
bomb is refused at the alias that crosses MAX_VALUES, before anything is expanded. It is also
faster than composing first (libyaml's events are cheap; the composer's per-node bookkeeping is
not), and every alias keeps its own position, so errors can point at it.

An alias shares the value built for its anchor (as PyYAML's constructor does); nothing downstream
mutates parsed specs, and their expanded size is bounded by MAX_VALUES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

# Spec files are a few KB; the largest real ones (thousands of columns) a few hundred KB.
MAX_FILE_BYTES = 2 * 1024 * 1024
"""A spec file larger than this is refused before it is read."""
MAX_DEPTH = 100
"""Mappings and lists nested deeper than this are refused (specs nest fewer than 10 levels)."""
MAX_VALUES = 250_000
"""Keys, values and list items in one file, counting every use of an alias anew."""

Position = tuple[int, int]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()  # ints, floats, bools, nulls, dates
_SCALAR_TAGS = {
    "null": "null",
    "bool": "true or false",
    "int": "a whole number",
    "float": "a number",
    "timestamp": "a date",
}
_SCALAR_CONSTRUCTORS: dict[str, Callable[[Any, ScalarNode], Any]] = {
    f"tag:yaml.org,2002:{name}": _CONSTRUCTOR.yaml_constructors[f"tag:yaml.org,2002:{name}"]
    for name in _SCALAR_TAGS
}

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
_PLAIN_COLLECTION_TAGS = (None, "!", _MAP, _SEQ)


class YamlMap(dict[Any, Any]):
    """A YAML mapping: `pos` is where it starts, `key_pos[key]` where each key is."""

    __slots__ = ("key_pos", "pos")  # no __dict__ per mapping: a large file holds many
    pos: Position
    key_pos: dict[Any, Position]


class YamlList(list[Any]):
    """A YAML sequence: `pos` is where it starts, `item_pos[i]` where each item is."""

    __slots__ = ("item_pos", "pos")
    pos: Position
    item_pos: list[Position]


class YamlProblem(Exception):
    """A document that is valid YAML syntax but not acceptable as a spec, at a 1-based position.

    `kind` lets the syntax-message module add a fix that needs the file's text (e.g. quoting).
    """

    def __init__(
        self,
        message: str,
        *,
        hint: str,
        at: Position | None,
        kind: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.at = at
        self.kind = kind


def nesting_message() -> tuple[str, str]:
    return (
        f"invalid YAML: mappings and lists are nested more than {MAX_DEPTH} levels deep here",
        "a spec nests a few levels: look for brackets opened and never closed, "
        "or flatten the structure",
    )


def _at(mark: Any) -> Position:
    return mark.line + 1, mark.column + 1


@dataclass
class _Anchor:
    value: Any
    at: Position
    size: int = 1  # values it stands for, itself included
    open: bool = False  # still being built: an alias to it now would be its own ancestor


@dataclass
class _Open:
    """A mapping or list being built."""

    value: YamlMap | YamlList
    anchor: _Anchor | None
    first: int  # the value count when it started
    key: Any = None  # mappings: the key waiting for its value
    key_at: Position = (1, 1)
    has_key: bool = False
    merges: list[YamlMap] = field(default_factory=list)
    own: set[Any] = field(default_factory=set)


_MERGE_KEY = object()


def _scalar(event: ScalarEvent) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
    if tag == _STR:
        return event.value
    if tag == _MERGE:
        return _MERGE_KEY
    if tag == _VALUE:
        return event.value
    construct = _SCALAR_CONSTRUCTORS.get(tag)
    if construct is None:
        raise YamlProblem(
            f"invalid YAML: unknown tag '{event.tag}'",
            hint="spec files use no YAML tags: remove it, or quote the value if the '!' is text",
            at=_at(event.start_mark),
        )
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        return construct(_CONSTRUCTOR, node)
    except (ValueError, TypeError, AttributeError, yaml.YAMLError):
        # e.g. 2024-02-30, which YAML reads as a date, or `!!int abc`
        what = _SCALAR_TAGS[tag.rsplit(":", 1)[-1]]
        raise YamlProblem(
            f"invalid YAML: {event.value!r} reads as {what} but is not a valid one",
            hint="fix the value, or quote it if it is meant as text",
            at=_at(event.start_mark),
        ) from None


def compose(text: str) -> Any:
    """The one document in `text` as YamlMap/YamlList/scalars; None for an empty file.

    Raises yaml's MarkedYAMLError for syntax errors (libyaml reports them as it goes), and
    YamlProblem for what is valid YAML but refused here: limits, aliases to nothing or to their
    own ancestor, duplicate keys, tags, more than one document.
    """
    loader = _Loader(text)
    try:
        return _Builder().run(loader)
    finally:
        loader.dispose()


class _Builder:
    def __init__(self) -> None:
        self.count = 0
        self.anchors: dict[str, _Anchor] = {}
        self.stack: list[_Open] = []
        self.documents = 0

    def run(self, loader: Any) -> Any:
        root: Any = None
        stack = self.stack
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is ScalarEvent:
                self._spend(1, event)
                value = _scalar(event)
                if event.anchor is not None:
                    self._anchor(event, value)
            elif kind is AliasEvent:
                value = self._alias(event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._start(event, mapping=kind is MappingStartEvent)
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                value = self._end()
            elif kind is DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    raise YamlProblem(
                        "invalid YAML: a second document starts here, but a spec file holds one",
                        hint="remove the '---' line (or everything after it), "
                        "or move the second spec to its own file",
                        at=_at(event.start_mark),
                    )
                continue
            elif kind is StreamEndEvent:
                return root
            else:  # stream start, document end
                continue
            if stack:
                self._add(stack[-1], value, event)
            else:
                root = value

    def _spend(self, size: int, event: Any, *, alias: str | None = None) -> None:
        self.count += size
        if self.count <= MAX_VALUES:
            return
        if alias is not None:
            raise YamlProblem(
                f"invalid YAML: the alias '*{alias}' makes this file stand for more than "
                f"{MAX_VALUES:,} values (aliases that repeat aliases multiply: an 'alias bomb')",
                hint="write the repeated part out, or use fewer aliases of aliases; spec files may "
                f"expand to at most {MAX_VALUES:,} keys, values and list items",
                at=_at(event.start_mark),
            )
        raise YamlProblem(
            f"invalid YAML: this file holds more than {MAX_VALUES:,} keys, values and list items",
            hint="a spec this large is not a spec: split it, or generate fewer entries",
            at=_at(event.start_mark),
        )

    def _anchor(self, event: Any, value: Any) -> _Anchor:
        name = event.anchor
        first = self.anchors.get(name)
        if first is not None:
            raise YamlProblem(
                f"invalid YAML: the anchor '&{name}' is defined twice "
                f"(first on line {first.at[0]})",
                hint="give each anchor its own name",
                at=_at(event.start_mark),
            )
        anchor = _Anchor(value, _at(event.start_mark))
        self.anchors[name] = anchor
        return anchor

    def _alias(self, event: Any) -> Any:
        name = event.anchor
        anchor = self.anchors.get(name)
        if anchor is None:
            raise YamlProblem(
                f"invalid YAML: '*{name}' is an alias, but no anchor '&{name}' is defined above it",
                hint="define the anchor before its first use",
                at=_at(event.start_mark),
                kind="alias",
            )
        if anchor.open:
            raise YamlProblem(
                f"invalid YAML: the alias '*{name}' is inside the value it refers to "
                f"(anchored on line {anchor.at[0]}), which would make it infinitely deep",
                hint=f"a value cannot contain itself: replace '*{name}' with the part you meant "
                "to repeat, written out",
                at=_at(event.start_mark),
            )
        self._spend(anchor.size, event, alias=name)
        return anchor.value

    def _start(self, event: Any, *, mapping: bool) -> None:
        if len(self.stack) >= MAX_DEPTH:
            message, hint = nesting_message()
            raise YamlProblem(message, hint=hint, at=_at(event.start_mark))
        if event.tag not in _PLAIN_COLLECTION_TAGS:
            raise YamlProblem(
                f"invalid YAML: unknown tag '{event.tag}'",
                hint="spec files use no YAML tags: remove it",
                at=_at(event.start_mark),
            )
        if event.tag == (_SEQ if mapping else _MAP):
            raise YamlProblem(
                f"invalid YAML: the tag '{event.tag}' does not fit this "
                f"{'mapping' if mapping else 'list'}",
                hint="spec files need no YAML tags: remove it",
                at=_at(event.start_mark),
            )
        self._spend(1, event)
        value: YamlMap | YamlList
        if mapping:
            value = YamlMap()
            value.key_pos = {}
        else:
            value = YamlList()
            value.item_pos = []
        value.pos = _at(event.start_mark)
        anchor = None
        if event.anchor is not None:
            anchor = self._anchor(event, value)
            anchor.open = True
        self.stack.append(_Open(value, anchor, self.count))

    def _end(self) -> Any:
        done = self.stack.pop()
        value = done.value
        if done.merges:
            assert isinstance(value, YamlMap)
            _merge(value, done.merges)
        if done.anchor is not None:
            done.anchor.open = False
            done.anchor.size = self.count - done.first + 1
        return value

    def _add(self, parent: _Open, value: Any, event: Any) -> None:
        # a mapping or list just ended: it is where it started; scalars and aliases are here
        ended = type(event) is MappingEndEvent or type(event) is SequenceEndEvent
        at = value.pos if ended else _at(event.start_mark)
        container = parent.value
        if isinstance(container, YamlList):
            container.append(value)
            container.item_pos.append(at)
            return
        if not parent.has_key:
            if isinstance(value, YamlMap | YamlList):
                raise YamlProblem(
                    "invalid YAML: a mapping or list is used as a key",
                    hint="keys are single words or values, like 'name:'; check for a stray "
                    "'?' or a bracket before the ':'",
                    at=at,
                )
            if value is not _MERGE_KEY:
                if value in parent.own:
                    raise YamlProblem(
                        f"invalid YAML: duplicate key {value!r} "
                        f"(first on line {container.key_pos[value][0]})",
                        hint="each key may appear once in a mapping; remove or rename one",
                        at=at,
                    )
                parent.own.add(value)
            parent.key, parent.key_at, parent.has_key = value, at, True
            return
        parent.has_key = False
        if parent.key is _MERGE_KEY:
            parent.merges.extend(_merge_sources(value, parent.key_at))
            return
        container[parent.key] = value
        container.key_pos[parent.key] = parent.key_at


def _merge_sources(value: Any, at: Position) -> list[YamlMap]:
    """`<<: *defaults` or `<<: [*a, *b]`: the mappings whose keys are merged in, in order."""
    if isinstance(value, YamlMap):
        return [value]
    if isinstance(value, YamlList) and all(isinstance(v, YamlMap) for v in value):
        return list(value)
    raise YamlProblem(
        "invalid YAML: '<<' merges mappings, but its value here is not a mapping "
        "or a list of mappings",
        hint="write '<<: *name' where '&name' marks a mapping, or quote the key if '<<' is text",
        at=at,
    )


def _merge(target: YamlMap, sources: list[YamlMap]) -> None:
    """The YAML merge key: the mapping's own keys win, then the sources in the order given.
    Merged keys come first (as PyYAML orders them) and keep their positions in the anchor."""
    own = list(target.items())
    own_pos = dict(target.key_pos)
    target.clear()
    target.key_pos = {}
    for source in sources:
        for key, item in source.items():
            if key not in target:
                target[key] = item
                target.key_pos[key] = source.key_pos[key]
    for key, item in own:
        target[key] = item
        target.key_pos[key] = own_pos[key]
