"""Bounded regular expressions: a spec's ``pattern`` must not stall whoever checks it.

A pattern comes from a spec (untrusted) and the string from a model (hostile), so ``^(a|a)*$``
against 30 characters would backtrack for minutes — and the stdlib ``re`` holds the GIL meanwhile,
stalling every other client of the server. Every match here goes through the ``regex`` package
instead: the same syntax as ``re`` (its default VERSION0 mode), a ``timeout=`` on each search, and
``concurrent=True`` so a match running in a worker thread lets the event loop go on. (google-re2
is linear-time but rejects lookarounds and backreferences, which OpenAPI patterns use.)

``bounded_validator(schema)`` is a Draft 2020-12 validator whose ``pattern``, ``patternProperties``
and ``additionalProperties`` keywords match this way. A search that runs past its time raises
``PatternTimeout``; the time is the ``deadline(...)`` block's remaining budget, or ``DEFAULT_TIMEOUT_S``.
(``unevaluatedProperties`` beside ``patternProperties`` still matches property names with ``re``.)
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Iterator
from typing import Any

import regex
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

DEFAULT_TIMEOUT_S = 0.25
_plain_additional_properties = Draft202012Validator.VALIDATORS["additionalProperties"]
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("inftool_pattern_deadline", default=None)


class PatternTimeout(Exception):
    """A pattern search ran past its time; ``pattern`` and ``text_length`` say which."""

    def __init__(self, pattern: str, text_length: int) -> None:
        self.pattern = pattern
        self.text_length = text_length
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        super().__init__(f"matching {text_length} characters against pattern {shown!r} took too long")


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Searches in this block (this thread or task) share one time budget of ``seconds``."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> Any:
    try:
        return regex.compile(pattern)
    except (regex.error, RecursionError, OverflowError, ValueError):
        return None


def search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches somewhere in ``text``; None when the pattern cannot be compiled.

    Raises ``PatternTimeout`` past the time budget."""
    compiled = _compiled(pattern)
    if compiled is None:
        return None
    end = _DEADLINE.get()
    budget = DEFAULT_TIMEOUT_S if end is None else end - time.monotonic()
    if budget <= 0:
        raise PatternTimeout(pattern, len(text))
    try:
        return compiled.search(text, timeout=budget, concurrent=True) is not None
    except TimeoutError:
        raise PatternTimeout(pattern, len(text)) from None


def _matches(pattern: str, text: str) -> bool:
    return search(pattern, text) is not False  # an unusable pattern constrains nothing


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and isinstance(pattern, str) and not _matches(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object") or not isinstance(patterns, dict):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    patterns = schema.get("patternProperties")
    if not patterns or not isinstance(patterns, dict):  # no regex involved: the library's own keyword
        yield from _plain_additional_properties(validator, extra, instance, schema)
        return
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    extras = [k for k in instance if k not in known and not any(_matches(p, k) for p in patterns)]
    if validator.is_type(extra, "object"):
        for key in extras:
            yield from validator.descend(instance[key], extra, path=key)
    elif extra is False and extras:
        listed = ", ".join(repr(k) for k in sorted(extras))
        yield ValidationError(f"{listed} {'does' if len(extras) == 1 else 'do'} not match any of the regexes")


BoundedValidator: Any = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


def bounded_validator(schema: Any) -> Any:
    """A Draft 2020-12 validator for ``schema`` whose regex keywords are time-bounded."""
    return BoundedValidator(schema)


_NAMES = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})  # name -> schema


def has_patterns(schema: Any) -> bool:
    """Whether ``schema`` uses a regex keyword anywhere (checking it may then take time). A property
    named "pattern" (BFCL's ``grep`` has one) is a name, not the keyword."""
    stack: list[tuple[Any, bool]] = [(schema, False)]  # (node, whether its keys are names, not keywords)
    seen: set[tuple[int, bool]] = set()
    while stack:
        node, named = stack.pop()
        if (id(node), named) in seen:
            continue
        seen.add((id(node), named))
        if isinstance(node, dict):
            if not named and ("pattern" in node or "patternProperties" in node):
                return True
            stack.extend((value, not named and key in _NAMES) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((item, False) for item in node)
    return False
