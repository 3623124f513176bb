"""Declared options: a stage says which options it takes, of what type and within which bounds, once; the API, the
pages and the stage itself check a project's options against that one declaration.

Options are plain JSON values (numbers, strings, booleans) and never name a file: a server-side path comes only
from the server (an uploaded file the team owns, a job folder), never from what a user typed. Anything not declared
is refused, so a new key cannot slip through into a training configuration.

Django-free: the stages declare their schemas in their cores (training.engine.options) and register them with their
stage; projects validates a project's options with `check_options`.
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("int", "float", "choice", "bool", "name", "group")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.() \-]{0,79}$")  # a model or device name: never a path


@dataclass(frozen=True)
class Option:
    """One option. `kind`:
    int / float: a number in [low, high] (a float may be given as a whole number);
    choice: one of `choices`; bool: true or false; name: a short identifier (letters, digits, _ . -), never a path;
    group: a nested set of options, `schema`.
    `tasks` limits it to projects of those tasks (empty: every task); `advanced` says it is shown on the pages."""

    name: str
    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    label: str = ""
    help: str = ""
    tasks: tuple[str, ...] = ()
    advanced: bool = False
    schema: tuple["Option", ...] = field(default=())

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")

    def applies_to(self, task: str | None) -> bool:
        return not self.tasks or task is None or task in self.tasks

    def describe(self) -> str:
        """The accepted values, in words: "a whole number from 1 to 500"."""
        if self.kind == "int":
            return f"a whole number from {_num(self.low)} to {_num(self.high)}"
        if self.kind == "float":
            return f"a number from {_num(self.low)} to {_num(self.high)}"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "name":
            return "a name of letters, digits, spaces, '_', '.', '-' and brackets (80 at most)"
        return "a set of options: " + ", ".join(o.name for o in self.schema)


class OptionsError(ValueError):
    """Options that do not match their declaration. `problems` maps a dotted option name to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {text}" for name, text in self.problems.items()))


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_value(option: Option, value, where: str, problems: dict[str, str], task: str | None = None):
    kind = option.kind
    if kind == "group":
        if not isinstance(value, Mapping):
            problems[where] = f"must be {option.describe()}, not {value!r}"
            return None
        return _check(value, option.schema, task, where, problems)
    if kind == "bool":
        if not isinstance(value, bool):
            problems[where] = f"must be true or false, not {value!r}"
        return value
    if kind == "choice":
        if isinstance(value, bool) or value not in option.choices:
            problems[where] = f"must be {option.describe()}, not {value!r}"
        return value
    if kind == "name":
        if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
            problems[where] = f"must be {option.describe()}, not {_short(value)}"
        return value
    # Numbers: booleans are ints to Python, not to a user.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems[where] = f"must be {option.describe()}, not {_short(value)}"
        return value
    if kind == "int" and not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        problems[where] = f"must be {option.describe()}, not {value!r}"
        return value
    if kind == "float" and not math.isfinite(value):
        problems[where] = f"must be {option.describe()}, not {value!r}"
        return value
    if (option.low is not None and value < option.low) or (option.high is not None and value > option.high):
        problems[where] = f"must be {option.describe()}, not {_num(value)}"
        return value
    return int(value) if kind == "int" else float(value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def _check(values: Mapping, schema: Iterable[Option], task, prefix: str, problems: dict[str, str]) -> dict:
    declared = {o.name: o for o in schema if o.applies_to(task)}
    checked = {}
    for key in values:
        name = f"{prefix}.{key}" if prefix else str(key)
        if key not in declared:
            known = ", ".join(declared) or "none"
            problems[name] = f"unknown option (known: {known})"
            continue
        checked[key] = _check_value(declared[key], values[key], name, problems, task)
    return checked


def check_options(values, schema: Iterable[Option], *, task: str | None = None, where: str = "") -> dict:
    """The given options, checked against the schema (for the project's task) and normalised (a whole-number float
    given for an int becomes an int). Raises OptionsError naming every unknown key and every bad value."""
    if values is None:
        return {}
    problems: dict[str, str] = {}
    if not isinstance(values, Mapping):
        raise OptionsError({where or "options": f"must be a set of options (an object), not {_short(values)}"})
    checked = _check(values, tuple(schema), task, where, problems)
    if problems:
        raise OptionsError(problems)
    return checked


def with_defaults(values: Mapping, schema: Iterable[Option], *, task: str | None = None) -> dict:
    """Every option of the schema that applies to the task and has a default, overridden by `values` (checked)."""
    schema = tuple(schema)
    given = check_options(values, schema, task=task)
    merged = {o.name: o.default for o in schema if o.applies_to(task) and o.default is not None and o.kind != "group"}
    merged.update(given)
    return merged


def describe_schema(schema: Iterable[Option], *, task: str | None = None) -> list[dict]:
    """The schema as plain data (for the API's description and the pages' form fields)."""
    rows = []
    for o in schema:
        if not o.applies_to(task):
            continue
        row = {"name": o.name, "kind": o.kind, "label": o.label or o.name, "help": o.help, "default": o.default,
               "advanced": o.advanced}
        if o.kind in ("int", "float"):
            row.update(low=o.low, high=o.high)
        if o.kind == "choice":
            row["choices"] = list(o.choices)
        if o.kind == "group":
            row["schema"] = describe_schema(o.schema, task=task)
        rows.append(row)
    return rows


# -- scrubbing server paths from what users read ----------------------------------------------------------------

_ABSOLUTE_PATH = re.compile(r"(?<![\w/.:])(/(?:[\w.\-+@~]+/)*[\w.\-+@~]+)")


def scrub_paths(text: str, *, roots: Iterable[str] = ()) -> str:
    """`text` with server paths removed: a path under one of `roots` (the data folder…) becomes its part after the
    root's last folder ("…/jobs/7/model.pt"), any other absolute path its file name ("model.pt"). A user reads the
    reason, never where the server keeps its files (nor whether a path exists)."""
    if not text:
        return text
    for root in sorted((str(r).rstrip("/") for r in roots if r and str(r) != "/"), key=len, reverse=True):
        text = text.replace(root + "/", "…/").replace(root, "…")
    return _ABSOLUTE_PATH.sub(_path_tail, text)


def _path_tail(match) -> str:
    path = match.group(1)
    return path if path.count("/") < 2 else "…/" + path.rsplit("/", 1)[1]
