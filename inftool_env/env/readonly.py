"""Read-only JSON containers, so observations can share the tools an env offers instead of copying them.

The offered tools are the same for every step of every episode of an env, and can be large (Google
Calendar's are ~230 kB of JSON schema): deep-copying them into each observation cost more than the
step's tool call. Observations share one frozen copy instead; changing it raises ``TypeError``, so a
policy that edits its tools by mistake learns it at once rather than editing every other episode's.
``thaw`` gives an editable copy. To ``isinstance``, ``json``, pydantic and chat templates they are
``dict`` and ``list``; being immutable, ``copy.deepcopy`` returns them as they are, and they pickle
as themselves.
"""

from __future__ import annotations

from typing import Any, NoReturn


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"this {type(self).__mro__[1].__name__} is read-only (shared by every observation of the env); "
        "inftool_env.env.readonly.thaw() gives an editable copy"
    )


class FrozenDict(dict[str, Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return FrozenDict, (dict(self),)


class FrozenList(list[Any]):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return FrozenList, (list(self),)


def freeze(value: Any) -> Any:
    """A read-only copy of a JSON value (dicts and lists, recursively; anything else as it is)."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """An editable deep copy (plain dicts and lists) of a value, frozen or not."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value
