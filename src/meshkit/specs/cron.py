"""Cron expressions: croniter decides what is valid; this module says what is wrong.

croniter only answers yes or no, so for a rejected expression we parse the five fields ourselves
to name the field that is wrong and its allowed range ("the hour field is 25, but hours run
0-23"). Five fields only: croniter also takes a sixth (seconds, at the end) and a seventh (year),
but a spec that says "0 0 6 * * *" most likely means Quartz's seconds-first order, and would run
at a different time than meant, so six or seven fields are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from croniter import croniter

from meshkit.suggest import did_you_mean

MAX_CRON_CHARS = 256
"""Longer expressions are refused before croniter sees them (real ones are under 100)."""

_SHORTCUTS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EXAMPLE = "e.g. '0 6 * * *' (06:00 every day)"
_FIELDS_HINT = f"the five fields are minute hour day-of-month month day-of-week, {_EXAMPLE}"
_USE_FIVE = f"use five fields: minute hour day-of-month month day-of-week, {_EXAMPLE}"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class _Field:
    name: str  # "hour"
    plural: str  # "hours"
    low: int
    high: int
    names: tuple[str, ...] = ()  # JAN..DEC: value low + index
    special: tuple[str, ...] = ()  # tokens croniter accepts as they are

    @property
    def span(self) -> str:
        text = f"{self.plural} run {self.low}-{self.high}"
        if self.names:
            text += f" (or {self.names[0]}-{self.names[-1]})"
        if self.name == "day-of-week":
            text += ", 0 and 7 both being Sunday"
        return text


_FIELDS = (
    _Field("minute", "minutes", 0, 59),
    _Field("hour", "hours", 0, 23),
    _Field("day-of-month", "days of the month", 1, 31, special=("L", "?")),
    _Field("month", "months", 1, 12, names=_MONTHS),
    _Field("day-of-week", "days of the week", 0, 7, names=_DAYS, special=("?",)),
)


class _Wrong(Exception):
    pass


def cron_problem(expression: str) -> tuple[str, str] | None:
    """None if `expression` is a valid five-field cron expression (or a shortcut such as
    @daily); otherwise (message, hint), the message naming the wrong field."""
    bad = f"invalid cron expression {expression!r}"
    text = expression.strip()
    if len(text) > MAX_CRON_CHARS:
        return (
            f"invalid cron expression ({len(text)} characters): a cron expression is five short "
            "fields",
            _USE_FIVE,
        )
    if not text:
        return f"{bad}: it is empty", _USE_FIVE
    if text.startswith("@"):
        if text.lower() in _SHORTCUTS:
            return None
        guess = did_you_mean(text.lower(), _SHORTCUTS)
        return (
            f"{bad}: {text!r} is not a cron shortcut",
            (f"did you mean '{guess}'? " if guess else "")
            + f"the shortcuts are {', '.join(_SHORTCUTS)}; or use five fields, {_EXAMPLE}",
        )
    fields = text.split()
    if len(fields) != 5:
        extra = " (seconds and years are not supported)" if len(fields) in (6, 7) else ""
        return (
            f"{bad}: it has {len(fields)} field{'s' if len(fields) != 1 else ''}, but a cron "
            f"expression has five{extra}",
            _USE_FIVE,
        )
    if croniter.is_valid(text):
        return None
    for field, value in zip(_FIELDS, fields, strict=True):
        try:
            _check_field(field, value)
        except _Wrong as wrong:
            return f"{bad}: {wrong}", f"fix the {field.name} field; {_FIELDS_HINT}"
    return bad, _USE_FIVE


def _check_field(field: _Field, value: str) -> None:
    """Raise _Wrong saying what is wrong with one field; return if it looks right."""
    for part in value.split(","):
        if not part:
            raise _Wrong(f"the {field.name} field {value!r} has an empty entry (check the commas)")
        _check_part(field, part, whole=part == value)


def _check_part(field: _Field, part: str, *, whole: bool) -> None:
    base, slash, step = part.partition("/")
    if slash:
        if "/" in step:
            raise _Wrong(f"the {field.name} field has {part!r}, with more than one '/'")
        if not step.isdigit():
            raise _Wrong(
                f"the {field.name} field has {part!r}: the step after '/' must be a whole number"
            )
        if int(step) == 0:
            raise _Wrong(f"the {field.name} field has {part!r}: the step must be at least 1")
    if base in ("*", *field.special) or (field.name == "day-of-week" and "#" in base):
        if "#" in base:
            _check_nth_weekday(field, base)
        return
    if field.name == "day-of-month" and base.endswith("W") and base[:-1].isdigit():
        base = base[:-1]  # nearest weekday to day N
    ends = base.split("-")
    if len(ends) > 2 or not all(ends):
        if base.startswith("-") and len(ends) == 2 and ends[1].isdigit():
            raise _Wrong(f"the {field.name} field has {part!r}, but {field.span}")
        raise _Wrong(
            f"the {field.name} field has {part!r}, which is not a number, a range (a-b) "
            "or a step (*/n)"
        )
    for end in ends:
        _check_value(field, end, part=part, whole=whole and len(ends) == 1 and not slash)


def _check_value(field: _Field, value: str, *, part: str, whole: bool) -> None:
    if value.isdigit():
        number = int(value)
        if field.low <= number <= field.high:
            return
        what = f"is {number}" if whole else f"has {number} (in {part!r})"
        raise _Wrong(f"the {field.name} field {what}, but {field.span}")
    if value.upper() in field.names:
        return
    if not field.names:
        owner = "month" if value.upper() in _MONTHS else "day-of-week"
        if value.upper() in _MONTHS + _DAYS:
            raise _Wrong(
                f"the {field.name} field has {value!r}, a name that belongs in the {owner} field "
                "(the fields are minute hour day-of-month month day-of-week)"
            )
        raise _Wrong(f"the {field.name} field has {value!r}, which is not a number: {field.span}")
    guess = did_you_mean(value.upper(), field.names)
    raise _Wrong(
        f"the {field.name} field has {value!r}, which is not a "
        f"{'month' if field.name == 'month' else 'day'} name ({', '.join(field.names)})"
        + (f"; did you mean '{guess}'?" if guess else "")
    )


def _check_nth_weekday(field: _Field, base: str) -> None:
    """`1#2`: the second Monday of the month."""
    day, _, nth = base.partition("#")
    _check_value(field, day, part=base, whole=False)
    if not nth.isdigit() or not 1 <= int(nth) <= 5:
        raise _Wrong(
            f"the {field.name} field has {base!r}: the week after '#' runs 1-5 "
            "(e.g. 1#2, the second Monday)"
        )
