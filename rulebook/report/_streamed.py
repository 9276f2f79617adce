"""A report whose long lists are read when they are written.

    report = Report.of(build_report(run))      # an in-memory report, as it was
    report = ledger_report(reader)             # a ledger's, read in passes (_inputs)
    report.head["totals"]                      # every figure but the long lists
    for p in report.items("positions"): ...    # read again on each call

`head` holds every key of the JSON report in its order, each long list (the
`STREAMED` keys) as None; `items(key)` reads that list afresh, one item at a
time. The writers (`iter_json`, `write_csv`, `iter_html`) take either form and
write the same bytes for both.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

from rulebook import _json

from ._build import STREAMED, finite

__all__ = ["Report", "Span", "indented", "iter_json"]


#: (points, first ts, last ts) of a list, when the report knew it without reading it
Span = tuple[int, int, int]


@dataclass(frozen=True)
class Report:
    head: dict[str, Any]
    lists: Mapping[str, Callable[[], Iterator[dict[str, Any]]]]
    spans: Mapping[str, Span] = field(default_factory=dict)

    @classmethod
    def of(cls, report: dict[str, Any] | Report) -> Report:
        """A `build_report` dict as a Report (its lists read from memory)."""
        if isinstance(report, Report):
            return report
        head = {k: (None if k in STREAMED else v) for k, v in report.items()}
        lists = {k: (lambda k=k: iter(report[k])) for k in STREAMED if k in report}
        return cls(head, lists)

    def items(self, key: str) -> Iterator[dict[str, Any]]:
        """The list `key`'s items, read now, each with non-finite floats as None."""
        return (_clean(x) for x in self.lists[key]())

    def to_dict(self) -> dict[str, Any]:
        """The whole report in memory (small reports and tests)."""
        return {k: (list(self.items(k)) if k in self.lists else v) for k, v in self.head.items()}


_STRICT = json.JSONEncoder(allow_nan=False, check_circular=False)


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    """`finite(item)`, the item itself when it holds no non-finite float: a flat item's
    values checked one by one, a nested one by the C encoder (strict, compact, thrown
    away); both far cheaper than rebuilding it."""
    for v in item.values():
        if isinstance(v, float):
            if not math.isfinite(v):
                return finite(item)  # type: ignore[no-any-return]
        elif isinstance(v, dict | list | tuple):
            try:
                _STRICT.encode(item)
            except ValueError:
                return finite(item)  # type: ignore[no-any-return]
            return item
    return item


def _flat(item: Any) -> bool:
    return isinstance(item, dict) and not any(
        isinstance(v, dict | list | tuple) for v in item.values()
    )


def indented(value: Any, level: int = 0) -> str:
    """`json.dumps(value, indent=2, allow_nan=False)` of JSON values (str keys) as
    written at depth `level`: the same bytes. json.dumps with an indent runs a
    pure-Python encoder whose closures form reference cycles on every call, garbage
    that only the cyclic collector frees, so a call per item piles it up for as long
    as the collector waits; this plain recursion leaves no cycle behind."""
    if _flat(value) and value and all(isinstance(k, str) for k in value):
        # one level of scalars: the C encoder, its item separator carrying the indent
        inner = "\n" + "  " * (level + 1)
        text = json.dumps(value, allow_nan=False, separators=("," + inner, ": "))
        return "{" + inner + text[1:-1] + "\n" + "  " * level + "}"
    parts: list[str] = []
    _encode(value, level, parts)
    return "".join(parts)


def _encode(o: Any, level: int, out: list[str]) -> None:
    if isinstance(o, str):
        out.append(encode_basestring_ascii(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        if not math.isfinite(o):
            raise ValueError(f"Out of range float values are not JSON compliant: {o!r}")
        out.append(float.__repr__(o))
    elif isinstance(o, list | tuple):
        if not o:
            out.append("[]")
            return
        inner = "\n" + "  " * (level + 1)
        out.append("[")
        for i, v in enumerate(o):
            out.append(inner if i == 0 else "," + inner)
            _encode(v, level + 1, out)
        out.append("\n" + "  " * level + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = "\n" + "  " * (level + 1)
        out.append("{")
        for i, (k, v) in enumerate(o.items()):
            if not isinstance(k, str):
                raise TypeError(f"keys must be str here, not {type(k).__name__}")
            out.append((inner if i == 0 else "," + inner) + encode_basestring_ascii(k) + ": ")
            _encode(v, level + 1, out)
        out.append("\n" + "  " * level + "}")
    else:
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def iter_json(report: dict[str, Any] | Report) -> Iterator[str]:
    """`_json.dumps(report, indent=2)`, written a list item at a time."""
    r = Report.of(report)
    text = _json.dumps({k: ([] if k in r.lists else v) for k, v in r.head.items()}, indent=2)
    # each long list is a top-level key: `\n  "key": []` (a newline is escaped in a
    # JSON string, so this text can only be that key), its items indented as
    # json.dumps(indent=2) indents a list item at depth 2
    start = 0
    for key in r.head:
        if key not in r.lists:
            continue
        mark = f'\n  "{key}": ['
        cut = text.index(mark + "]", start) + len(mark)
        yield text[start:cut]
        first = True
        for item in r.items(key):
            yield ("\n    " if first else ",\n    ") + indented(item, 2)
            first = False
        yield "]" if first else "\n  ]"
        start = cut + 1
    yield text[start:]
