"""Entry decisions under the risk limits (spec section 7), given the open book.

The paper-trading executor passes its open positions as a `Book`; the engine
asks a `RiskBudget` about each entry a rule wants, in a stable order, and the
budget counts what it has already let through, so two entries in one
evaluation cannot together exceed a limit that each alone respects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rulebook.lang import RiskLimits, Subject, format_value

__all__ = [
    "MIN_TRADE",
    "Book",
    "Decision",
    "DecisionKind",
    "OpenPosition",
    "RiskBudget",
    "position_key",
]

#: A hedge cut below this many units of quote currency is not worth opening (spec 7).
MIN_TRADE = 10.0

DecisionKind = Literal["open", "already_open", "cut", "blocked"]


@functools.lru_cache(maxsize=65536)
def position_key(subject: Subject) -> tuple[str, ...]:
    """What makes two subjects "the same position": the markets they trade.

    `spread(SOL, a, b)` and `spread(SOL, b, a)` trade the same two perps, and
    `funding`, `basis` and `borrow` of one coin on one exchange all trade its
    perp against its spot; opening either twice would double one position.
    """
    if subject.kind == "spread":
        return ("spread", subject.coin, *sorted(subject.exchanges))
    return ("carry", subject.coin, subject.exchanges[0])


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """One open position as the executor knows it."""

    rule: str
    bindings: dict[str, str]
    subject: Subject
    notional: float  # leg notional N, in the quote currency


@dataclass(slots=True)
class Book:
    """The open positions the risk limits count (empty for a dry-run from scratch)."""

    positions: list[OpenPosition] = field(default_factory=list)

    @property
    def exposure(self) -> float:
        return sum(p.notional for p in self.positions)


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    amount: float  # what to open: the cut size when cut; the request otherwise
    reason: str | None


def _money(x: float) -> str:
    return format_value("Money", x)


class RiskBudget:
    """Decides entries one at a time, remembering what it has let through.

    Order of checks: a position on the same subject (already_open), then
    `min_confidence`, `max_open_positions`, and last the room left under
    `max_single_position` and `max_total_exposure` (cut, or blocked under
    10 USDT).
    """

    def __init__(
        self,
        risk: RiskLimits,
        book: Book | None = None,
        key: Callable[[Subject], Hashable] = position_key,
    ) -> None:
        """`key` names a subject's position (`position_key` by default); the
        engine passes one that gives integer codes, which it can compute for
        thousands of entries at once (see `verdicts`)."""
        self.risk = risk
        book = book or Book()
        self.exposure = book.exposure
        self.count = len(book.positions)
        self._key = key
        # position key -> who holds it, for the already_open reason
        self._held: dict[Hashable, str] = {
            key(p.subject): f"opened by rule {p.rule}" for p in book.positions
        }

    def decide(
        self, subject: Subject, amount: float, confidence: float, rule: str = ""
    ) -> Decision:
        """The decision for one entry; an open or cut counts against later entries."""
        return Decision(*self.verdict(subject, amount, confidence, rule))

    def verdict(
        self, subject: Subject, amount: float, confidence: float, rule: str = ""
    ) -> tuple[DecisionKind, float, str | None]:
        """`decide` as a plain (kind, amount, reason) tuple."""
        return self.verdicts([self._key(subject)], [subject], [amount], [confidence], [rule])[0]

    def verdict_columns(
        self,
        keys: np.ndarray,
        subjects: Sequence[Subject],
        amounts: np.ndarray,
        confidences: np.ndarray,
        rules: list[str],
    ) -> tuple[list[DecisionKind], list[float], list[str | None]]:
        """`verdicts` over columns (keys as integers), as three lists.

        Without a limit that counts what is let through (`max_open_positions`,
        `max_single_position`, `max_total_exposure`), which entry opens does
        not depend on the ones before it but for its position: the first
        entry of each position that is not held by the book and passes
        `min_confidence` opens, the later ones find it already open. That is
        decided on the arrays; with such a limit, one entry at a time."""
        risk = self.risk
        if not (
            risk.max_open_positions is None
            and risk.max_single_position is None
            and risk.max_total_exposure is None
        ):
            out = self.verdicts(
                keys.tolist(), subjects, amounts.tolist(), confidences.tolist(), rules
            )
            return [v[0] for v in out], [v[1] for v in out], [v[2] for v in out]
        n = len(keys)
        held = self._held
        book = np.array([k for k in held if isinstance(k, int)], dtype=np.int64)
        valid = amounts > 0  # NaN is not
        in_book = np.isin(keys, book) & valid
        min_confidence = risk.min_confidence
        candidate = valid & ~in_book
        if min_confidence is not None:
            candidate &= ~(confidences < min_confidence)
        at = np.flatnonzero(candidate)
        opened_keys, first = np.unique(keys[at], return_index=True)
        openers = at[first]
        # each entry's position's opener (-1: none opens it)
        slot = np.searchsorted(opened_keys, keys)
        slot[slot >= len(opened_keys)] = 0
        has = (opened_keys[slot] == keys) if len(opened_keys) else np.zeros(n, dtype=bool)
        opener = np.where(has, openers[slot] if len(openers) else 0, -1)
        j = np.arange(n)
        # 0 open, 1 already open (book), 2 already open (earlier here),
        # 3 blocked by its amount, 4 blocked by min_confidence
        code = np.full(n, 4, dtype=np.int8)
        code[~valid] = 3
        code[in_book] = 1
        later = valid & ~in_book & has & (j > opener)
        code[later] = 2
        code[openers] = 0
        kinds: list[DecisionKind] = _KIND_OF[code].tolist()
        reasons: list[str | None] = [None] * n
        taken = amounts.tolist()
        # already open (most of the entries not opened): worded in C-level maps
        # over the entries' lists (an array's item costs a Python object a read)
        again = np.flatnonzero(code == 2).tolist()
        if again:
            rule_of = map(rules.__getitem__, opener[again].tolist())
            texts = map(
                _ALREADY_OPEN.format,
                map(_describe, _take(subjects, again)),
                map(_opened_here, rule_of),
            )
            for i, text in zip(again, texts, strict=True):
                reasons[i] = text
        for i in np.flatnonzero((code == 1) | (code >= 3)).tolist():
            c = int(code[i])
            if c == 1:
                who = held[int(keys[i])]
                reasons[i] = _ALREADY_OPEN.format(subjects[i].describe(), who)
            elif c == 3:
                reasons[i] = f"the hedge amount {_money(taken[i])} is not positive"
            else:
                reasons[i] = (
                    f"min_confidence: confidence {confidences[i]:.2f} is below {min_confidence:g}"
                )
        first_ones = openers.tolist()
        held.update(zip(
            keys[openers].tolist(), map(_opened_here, [rules[i] for i in first_ones]), strict=True
        ))
        self.exposure += float(amounts[openers].sum())
        self.count += len(openers)
        return kinds, taken, reasons

    def verdicts(
        self,
        keys: Iterable[Hashable],
        subjects: Iterable[Subject],
        amounts: Iterable[float],
        confidences: Iterable[float],
        rules: Iterable[str],
    ) -> list[tuple[DecisionKind, float, str | None]]:
        """The verdicts of several entries, decided in the order given.

        `keys` are the entries' position keys, as this budget's `key` gives
        them (the caller may compute them in bulk). The one implementation of
        the checks: `verdict` is this over a single entry. evaluate() decides
        thousands of entries per cycle; building a frozen Decision for each
        only to read it back took about a third of the decision time, so a
        verdict is a plain tuple.
        """
        risk = self.risk
        held = self._held
        min_confidence = risk.min_confidence
        max_open = risk.max_open_positions
        single = risk.max_single_position
        total = risk.max_total_exposure
        unlimited = single is None and total is None
        exposure, count = self.exposure, self.count
        out: list[tuple[DecisionKind, float, str | None]] = []
        add = out.append
        for key, subject, amount, confidence, rule in zip(
            keys, subjects, amounts, confidences, rules, strict=True
        ):
            if not amount > 0:  # an amount computed from market data can be 0, negative or NaN
                add(("blocked", amount, f"the hedge amount {_money(amount)} is not positive"))
                continue
            who = held.get(key)
            if who is not None:
                add((
                    "already_open",
                    amount,
                    _ALREADY_OPEN.format(subject.describe(), who),
                ))
                continue
            if min_confidence is not None and confidence < min_confidence:
                add((
                    "blocked",
                    amount,
                    f"min_confidence: confidence {confidence:.2f} is below {min_confidence:g}",
                ))
                continue
            if max_open is not None and count >= max_open:
                add((
                    "blocked",
                    amount,
                    f"max_open_positions: {count} of {max_open} already open",
                ))
                continue
            if unlimited:
                taken = amount
                add(("open", amount, None))
            else:
                # the room: the smaller of max_single_position and what
                # max_total_exposure leaves
                room, limit = float("inf"), ""
                if single is not None:
                    room, limit = single, "max_single_position"
                if total is not None:
                    total_room = total - exposure
                    if total_room <= room:
                        room, limit = total_room, "max_total_exposure"
                if amount <= room:
                    taken = amount
                    add(("open", amount, None))
                elif room < MIN_TRADE:
                    left = _money(max(room, 0.0))
                    add((
                        "blocked",
                        amount,
                        f"{limit}: {left} left, under the {_money(MIN_TRADE)} minimum",
                    ))
                    continue
                else:
                    taken = room
                    add(("cut", room, f"{limit}: cut from {_money(amount)} to {_money(room)}"))
            held[key] = _opened_here(rule)
            exposure += taken
            count += 1
        self.exposure, self.count = exposure, count
        return out


#: the already_open reason: the subject's description and who holds it
_ALREADY_OPEN = "a position on {} is already open ({})"
_describe = Subject.describe


def _take(seq: Sequence[Subject], positions: list[int]) -> Iterable[Subject]:
    """`seq[i]` for each position: the sequence's own `take` if it has one
    (the engine's subjects of bindings read each binding only then)."""
    take = getattr(seq, "take", None)
    if take is not None:
        got: Iterable[Subject] = take(positions)
        return got
    return [seq[i] for i in positions]


@functools.lru_cache(maxsize=4096)
def _opened_here(rule: str) -> str:
    """Who holds a position opened earlier in this evaluation (one text per rule)."""
    return f"opened earlier in this evaluation by rule {rule}"


_KIND_OF = np.array(["open", "already_open", "already_open", "blocked", "blocked"], dtype=object)
