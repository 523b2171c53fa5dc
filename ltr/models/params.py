"""Back-end parameters as values: deeply immutable in a spec, plain dicts for the back-ends."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from ltr.errors import LtrError


def frozen(value: Any) -> Any:
    """A deeply immutable copy of a JSON-like value: mappings -> `FrozenParams`, lists ->
    tuples."""
    if isinstance(value, Mapping):
        return FrozenParams(value)
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """A plain, mutable deep copy (dicts, lists) of a parameter value: for JSON and for the
    back-ends, which may modify what they are given."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class FrozenParams(Mapping[str, Any]):
    """An immutable, hashable mapping of back-end parameters.

    A spec is a value: a preset shared by every caller, or a trial's spec stored next to its
    score, must not change behind their backs (``spec.params["eta"] = 0.9`` raises TypeError).
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = {str(k): frozen(v) for k, v in (items or {}).items()}

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._items.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"FrozenParams({self._items!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy (lists, dicts) for JSON and the back-ends."""
        return {k: plain(v) for k, v in self.items()}


def check_param_names(learner: str, params: Mapping[str, Any], backend: Any) -> None:
    """Refuse parameter names the back-end would silently ignore, suggesting the closest one.

    `backend` is the learner class (`ltr.models.learners.Learner`), which knows its names.
    """
    if not params:
        return
    unknown = backend.unknown_params(params)
    if not unknown:
        return
    name = unknown[0]
    close = difflib.get_close_matches(name, sorted(backend.known_params()), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    more = f" (and {len(unknown) - 1} more: {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
    raise LtrError(f"unknown parameter {name!r} for {learner}{hint}{more}")
