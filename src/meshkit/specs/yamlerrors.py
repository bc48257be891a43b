"""Turn YAML errors into located Problems that say the likely cause and the fix.

libyaml says where it gave up ("found character that cannot start any token"); a user needs to
know why and what to type instead ("quote the value: cron: "@daily""). Each case below reads the
line the parser stopped on to tell apart the common mistakes that produce the same parser error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.error import MarkedYAMLError, YAMLError

from meshkit.errors import Problem
from meshkit.specs.yamlcompose import YamlProblem, nesting_message

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# plain values cannot start with these; YAML reserves them for future use or directives
_RESERVED = {"@": "'@'", "`": "a backtick", "%": "'%'"}


def composer_problem(err: YamlProblem, text: str, file: Path) -> Problem:
    """A refusal of the composer (limits, aliases, duplicate keys), with a quoting fix where an
    alias was probably meant as text."""
    hint = err.hint
    if err.kind == "alias" and err.at is not None:
        fix = _quoted(text, err.at[0] - 1, err.at[1] - 1)
        if fix is not None:
            hint = f"{hint}; if the '*' is text, quote the value: {fix}"
    line, column = err.at if err.at is not None else (None, None)
    return Problem(err.message, file=file, line=line, column=column, hint=hint)


def syntax_problem(err: YAMLError, text: str, file: Path) -> Problem:
    if not isinstance(err, MarkedYAMLError):
        return Problem(f"invalid YAML: {err}", file=file, hint=_GENERIC)
    return _Diagnosis(err, text).problem(file)


_GENERIC = "check the indentation and quoting around this line"


class _Diagnosis:
    def __init__(self, err: MarkedYAMLError, text: str) -> None:
        self.err = err
        self.text = text
        self.lines = text.splitlines()
        self.mark: Any = err.problem_mark or err.context_mark
        self.context = str(err.context or "")
        self.what = str(err.problem or "")
        detail = " ".join(x for x in (self.context, self.what) if x)
        self.message = f"invalid YAML: {detail}"
        self.hint = _GENERIC

    def line(self, index: int) -> str:
        return self.lines[index] if 0 <= index < len(self.lines) else ""

    def problem(self, file: Path) -> Problem:
        self.diagnose()
        mark = self.mark
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        return Problem(self.message, file=file, line=line, column=column, hint=self.hint)

    def diagnose(self) -> None:
        mark, context, what = self.mark, self.context, self.what
        opened = self.err.context_mark
        if mark is None:
            return
        here = self.line(mark.line)
        char = here[mark.column : mark.column + 1]
        if "maximum nesting depth" in what:
            # libyaml's own limit (1000, from 0.2.6 on), reached by scanning ahead of MAX_DEPTH
            self.message, self.hint = nesting_message()
        elif (
            "tab character" in what
            or char == "\t"
            or ("cannot start any token" in what and "\t" in _indentation(here))
        ):
            self.tab(mark.line)
        elif "quoted scalar" in context and opened is not None:
            self.message = "invalid YAML: the quote opened here is never closed"
            self.hint = "add the closing quote at the end of the value"
            self.mark = opened
        elif (runaway := _runaway_quote(self.text, mark.line)) is not None:
            self.mark, end_line = runaway
            self.message = (
                "invalid YAML: the quote opened here is not closed on its line, so the text "
                f"runs on to line {end_line}"
            )
            self.hint = "add the closing quote at the end of the value"
        elif context.startswith("while parsing a flow") and opened is not None:
            bracket = self.line(opened.line)[opened.column : opened.column + 1] or "["
            closer = {"[": "]", "{": "}"}.get(bracket, "]")
            self.message = (
                f"invalid YAML: the '{bracket}' opened here is not closed "
                f"({what} at line {mark.line + 1}, column {mark.column + 1})"
            )
            self.hint = (
                f"close it with '{closer}' on the same line, or write the entries as indented lines"
            )
            self.mark = opened
        elif "cannot start any token" in what and char in _RESERVED:
            self.message = (
                f"invalid YAML: a value cannot start with {_RESERVED[char]} unless it is quoted "
                "(YAML reserves it)"
            )
            self.quote_hint(mark.line, mark.column)
        elif context in ("while scanning an alias", "while scanning an anchor") and opened:
            sign, name = ("*", "alias") if "alias" in context else ("&", "anchor")
            self.message = (
                f"invalid YAML: '{sign}' at the start of a value begins an {name} "
                f"(YAML's '&name' marks a value, '*name' repeats it)"
            )
            self.mark = opened
            self.quote_hint(opened.line, opened.column)
        elif "mapping values are not allowed" in what:
            self.colon(mark.line, mark.column)
        elif "did not find expected key" in what or "expected '-' indicator" in what:
            self.misplaced(mark.line, mark.column)
        elif "could not find expected ':'" in what and opened is not None:
            word = self.line(opened.line)[opened.column :].strip()
            self.message = (
                f"invalid YAML: '{_shorten(word)}' on line {opened.line + 1} is not followed by ':'"
            )
            self.hint = (
                "write 'key: value'; if the line continues the value above it, indent it "
                "deeper than that value's key"
            )
            self.mark = opened
        elif "while scanning a block scalar" in context:
            self.message = "invalid YAML: text follows '|' or '>' on the same line"
            self.hint = (
                "start the text of a '|' or '>' block on the next line, indented; or quote the "
                "value if the '|' or '>' is part of it"
            )
        elif "cannot start any token" in what and char:
            self.message = f"invalid YAML: a value cannot start with {char!r} here"
            self.quote_hint(mark.line, mark.column)

    def tab(self, line: int) -> None:
        here = self.line(line)
        tab = here.find("\t")
        self.message = "invalid YAML: a tab character is used for indentation"
        self.hint = (
            "YAML does not allow tabs for indentation; use spaces instead (most editors can "
            "insert spaces when Tab is pressed)"
        )
        if tab >= 0:
            self.mark = _Mark(line, tab)

    def quote_hint(self, line: int, column: int) -> None:
        fix = _quoted(self.text, line, column)
        self.hint = f"quote the value: {fix}" if fix else "quote the value"

    def colon(self, line: int, column: int) -> None:
        """'mapping values are not allowed': a ': ' inside a value, or a line indented too deep
        (it then continues the value above, and its ': ' comes too late)."""
        here = self.line(line)
        separator = here.find(": ", _content_start(here))
        if 0 <= separator < column:
            self.message = (
                "invalid YAML: the value contains ': ', which YAML reads as the start of a key "
                "(mapping values are not allowed in this context)"
            )
            start = separator + 1
            while start < len(here) and here[start] == " ":
                start += 1
            self.quote_hint(line, start)
            return
        self.message = (
            f"invalid YAML: line {line + 1} is indented deeper than the key above it "
            "(mapping values are not allowed in this context)"
        )
        above = _previous_content_line(self.lines, line)
        if above is None:
            self.hint = "this line is indented deeper than it should be: remove the extra spaces"
            return
        key_column = _content_start(self.line(above))
        name = _word_at(self.line(above), key_column)
        self.hint = (
            f"this line is indented deeper than '{name}' on line {above + 1}: indent it by "
            f"{_spaces(key_column)} like that key; or, if the value above contains ': ', quote it"
        )

    def misplaced(self, line: int, column: int) -> None:
        """'did not find expected key' / "expected '-' indicator": a line at an indentation no
        mapping or list above has, a list item among keys, or text after a closing quote."""
        here = self.line(line)
        indent = len(here) - len(here.lstrip(" "))
        if column != indent:
            before = here[:column].rstrip()
            if before.endswith(("'", '"')):
                self.message = "invalid YAML: text follows the closing quote of the value"
                self.hint = "put the whole value inside the quotes"
            return
        if here[indent : indent + 2] in ("- ", "-") and "block mapping" in self.context:
            self.message = "invalid YAML: a list item ('- ') is where the mapping above needs a key"
            self.hint = (
                "put the list under a key ('tags:' then '  - item' on the next lines), or indent "
                "it under the key it belongs to"
            )
            return
        self.message = (
            f"invalid YAML: line {line + 1} is indented by {_spaces(indent)}, which lines up with "
            "no key or list item above it"
        )
        choices = _alignments(self.lines, line, indent)
        if choices:
            self.hint = "line it up with the entries it belongs to: " + " or ".join(choices)
        else:
            self.hint = "remove the spaces before the key"


class _Mark:
    def __init__(self, line: int, column: int) -> None:
        self.line = line
        self.column = column


def _spaces(n: int) -> str:
    return "1 space" if n == 1 else f"{n} spaces"


def _indentation(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _content_start(line: str) -> int:
    """Where a line's key starts: after the indentation and any '- ' list markers."""
    position = len(line) - len(line.lstrip(" "))
    while line[position : position + 2] == "- ":
        position += 2
        while line[position : position + 1] == " ":
            position += 1
    return position


def _word_at(line: str, column: int) -> str:
    word = line[column:].split(":", 1)[0].strip()
    return _shorten(word or line[column : column + 1])


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _previous_content_line(lines: list[str], line: int) -> int | None:
    for index in range(line - 1, -1, -1):
        if _is_content(lines[index]):
            return index
    return None


def _alignments(lines: list[str], line: int, indent: int) -> list[str]:
    """The nearest indentation above deeper than `indent` and the nearest shallower one: the
    two places a misaligned line probably belongs."""
    deeper: str | None = None
    shallower: str | None = None
    for index in range(line - 1, -1, -1):
        text = lines[index]
        if not _is_content(text):
            continue
        columns = [len(text) - len(text.lstrip(" "))]
        if text.lstrip(" ").startswith("- "):
            columns.append(_content_start(text))
        for column in sorted(columns, reverse=True):
            what = "the '-'" if text[column] == "-" else f"'{_word_at(text, column)}'"
            spaces = _spaces(column) if column else "no indentation"
            label = f"{spaces} (like {what} on line {index + 1})"
            if column > indent and deeper is None and shallower is None:
                deeper = label
            elif column < indent and shallower is None:
                shallower = label
        if shallower is not None:
            break
    return [c for c in (deeper, shallower) if c is not None]


def _quoted(text: str, line: int, column: int) -> str | None:
    """The line with the value starting at `column` in quotes: the fix to show the user.

    The value runs to the end of the line (before a ' #' comment), or, inside [...] or {...},
    to the next ',' or closing bracket."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    here = lines[line]
    head = here[:column]
    in_flow = head.count("[") + head.count("{") > head.count("]") + head.count("}")
    end = len(here)
    comment = here.find(" #", column)
    if comment >= 0:
        end = comment
    if in_flow:
        for stop in ",]}":
            found = here.find(stop, column, end)
            if found >= 0:
                end = found
    value = here[column:end].rstrip()
    if not value:
        return None
    if '"' not in value and "\\" not in value:
        quoted = f'"{value}"'
    else:
        quoted = "'" + value.replace("'", "''") + "'"
    return (head + quoted + here[column + len(value) :]).strip()


def _runaway_quote(text: str, error_line: int) -> tuple[Any, int] | None:
    """A quoted scalar spanning lines and ending just before the error: its closing quote is
    probably missing, and the parser only noticed lines later (at the next quote)."""
    found: tuple[Any, int] | None = None
    try:
        for token in yaml.scan(text, Loader=_Loader):
            start, end = token.start_mark, token.end_mark
            if start.line >= error_line:
                break
            if (
                type(token).__name__ == "ScalarToken"
                and token.style in ("'", '"')
                and end.line > start.line
                and end.line >= error_line - 1
            ):
                found = (start, end.line + 1)
    except YAMLError:
        pass
    return found
