"""Every binding of a rule at once: `when` clauses and metrics over numpy arrays.

A cross-exchange rule over 300 coins and 30 ordered venue pairs has 9,000
bindings; calling the compiled closures 9,000 times per rule per cycle costs
tens of milliseconds. Here each clause is compiled a second time, from the same
checked AST, into array operations over all of a rule's bindings, with the
scalar semantics kept exactly:

- a value is `(values, missing, reason)`: `missing` marks bindings that would
  raise NoData, `reason` the first missing datum in evaluation order (a code,
  decoded into words only for the bindings actually skipped);
- `a and b` only counts b's missing data where a held, `a or b` where a did
  not, as the closures' short-circuit does; arithmetic and comparisons
  evaluate left first;
- figures use the same formulas in the same operation order as `_metrics`,
  so floats agree to the last bit (tests check vector against scalar).

The evaluator falls back to the closures for --explain, and for a ruleset
compiled without its Program.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rulebook.lang import EXCHANGES, Ruleset
from rulebook.lang import _ast as A
from rulebook.lang._check import Program
from rulebook.market import SnapshotView

from . import _metrics as M
from ._fees import EngineConfig, resolve_taker_fee

__all__ = ["VectorRuleset", "MarketArrays", "RuleResult", "vector_ruleset"]

EX_INDEX = {e: i for i, e in enumerate(EXCHANGES)}
N_EX = len(EXCHANGES)

# reason codes: 0 none; > 0 a market datum (kind, exchange, coin); FIGURES the
# subject's legs; <= DIV_ZERO - k a division by zero at node k
FIGURES = -1
DIV_ZERO = -2

# market-call kinds, in the order used to encode reasons
KINDS = ("funding", "basis", "borrow", "price", "volume", "next_funding", "spot_mid")
KIND_INDEX = {k: i for i, k in enumerate(KINDS)}


@dataclass(slots=True)
class V:
    """A vector value: `v` (array or scalar), `m` missing mask or None, `r` reason codes."""

    v: Any  # an array or a scalar: numpy's stubs cannot take "either" through a ufunc
    m: np.ndarray | None = None
    r: np.ndarray | None = None


class MarketArrays:
    """One snapshot as (exchange x coin) arrays; NaN where data is missing."""

    def __init__(self, view: SnapshotView, coins: dict[str, int], config: EngineConfig):
        shape = (N_EX, max(len(coins), 1))
        self.n_coins = n = shape[1]
        at = view.at
        fees = config.taker_fees
        # One row per observation, written into the arrays at the end in one
        # fancy assignment per column: numpy's per-element `a[e, c] = x` costs
        # about as much as the rest of the row. The arithmetic stays in Python
        # floats, the same operations as SnapshotView's, so values agree bit
        # for bit. None becomes NaN in a float array (missing, as elsewhere).
        perp: list[tuple[object, ...]] = []
        spot: list[tuple[object, ...]] = []
        borrow_rows: list[tuple[float, float]] = []
        perp_cells: list[int] = []
        spot_cells: list[int] = []
        borrow_cells: list[int] = []
        # the taker fee, when the observation has none, depends only on the exchange
        perp_fees: dict[str, float] = {}
        spot_fees: dict[str, float] = {}
        for o in view.observations():
            c = coins.get(o.coin)
            e = EX_INDEX.get(o.exchange)
            if c is None or e is None:
                continue
            age = (at - o.ts) / 1000.0
            if o.market == "perp":
                rate, hours, nxt = o.funding_rate, o.funding_interval_h, o.next_funding_ts
                fee = o.taker_fee
                if fee is None:
                    fee = perp_fees.get(o.exchange)
                    if fee is None:
                        fee = resolve_taker_fee(o.exchange, "perp", None, fees)[0]
                        perp_fees[o.exchange] = fee
                perp_cells.append(e * n + c)
                perp.append((
                    M.normalise_funding(rate, hours) if rate is not None and hours else None,
                    o.mark,
                    o.index,
                    o.volume_24h,
                    (nxt - at) / 1000.0 if nxt is not None else None,
                    age,
                    fee,
                ))
            elif o.market == "spot":
                fee = o.taker_fee
                if fee is None:
                    fee = spot_fees.get(o.exchange)
                    if fee is None:
                        fee = resolve_taker_fee(o.exchange, "spot", None, fees)[0]
                        spot_fees[o.exchange] = fee
                bid, ask = o.bid, o.ask
                spot_cells.append(e * n + c)
                spot.append((M.mid_price(bid, ask) if bid is not None and ask is not None else None,
                             age, fee))
            elif o.borrow_rate_daily is not None:
                borrow_cells.append(e * n + c)
                borrow_rows.append((M.borrow_per_8h(o.borrow_rate_daily), age))
        funding, mark, index, volume, next_s, perp_age, perp_fee = _columns(
            perp, perp_cells, shape, 7
        )
        mid, spot_age, spot_fee = _columns(spot, spot_cells, shape, 3)
        borrow, borrow_age = _columns(borrow_rows, borrow_cells, shape, 2)
        with np.errstate(all="ignore"):
            basis = np.where(np.isnan(mark), np.nan, M.basis_rate(mark, mid))
        self.by_kind = {
            "funding": funding,
            "basis": basis,
            "borrow": borrow,
            "price": mark,
            "volume": volume,
            "next_funding": next_s,
            "spot_mid": mid,
        }
        self.mark, self.index, self.mid = mark, index, mid
        self.perp_age, self.spot_age, self.borrow_age = perp_age, spot_age, borrow_age
        self.perp_fee, self.spot_fee = perp_fee, spot_fee
        #: results shared across rules within this snapshot: market lookups by
        #: (kind, coin array, exchange array) and figures by subject arrays
        self.memo: dict[tuple[object, ...], object] = {}

    def code(self, kind: str, e: np.ndarray | int, c: np.ndarray | int) -> np.ndarray | int:
        return 1 + (KIND_INDEX[kind] * N_EX + e) * self.n_coins + c

    def decode(self, code: int) -> tuple[str, str, int]:
        """(kind, exchange, coin index) of a positive reason code."""
        k, rest = divmod(code - 1, N_EX * self.n_coins)
        e, c = divmod(rest, self.n_coins)
        return KINDS[k], EXCHANGES[e], c


def _columns(
    rows: Sequence[tuple[object, ...]], cells: list[int], shape: tuple[int, int], width: int
) -> list[np.ndarray]:
    """`width` (exchange x coin) arrays, NaN but where a row gives the cell's value."""
    out = [np.full(shape, np.nan) for _ in range(width)]
    if rows:
        table = np.array(rows, dtype=float)  # None -> NaN
        flat = np.array(cells, dtype=np.intp)
        for k, arr in enumerate(out):
            arr.reshape(-1)[flat] = table[:, k]
    return out


@dataclass(slots=True)
class RuleResult:
    fired: np.ndarray  # bool per binding (False where skipped)
    skipped: np.ndarray  # bool per binding
    reason: np.ndarray  # reason code per binding (meaningful where skipped)
    figures: _Figures | None  # the subject's figures per binding (rules with a subject)
    amounts: np.ndarray | None  # the hedge amount per binding (rules with a hedge)


Arg = np.ndarray | int


@dataclass(slots=True)
class _Subject:
    kind: str
    coin: np.ndarray
    a: np.ndarray
    b: np.ndarray | None


@dataclass(slots=True)
class _Figures:
    edge: np.ndarray
    fees: np.ndarray
    breakeven: np.ndarray
    confidence: np.ndarray
    risk: np.ndarray
    missing: np.ndarray | None
    reason: np.ndarray | None  # where missing: the first missing datum, as the env reads them
    deviation: np.ndarray
    price_score: np.ndarray
    age: np.ndarray
    fresh: np.ndarray
    #: which way round the legs go: spread, the first exchange is the short
    #: one; funding/basis, funding >= 0 (short perp, long spot)
    first_short: np.ndarray


@dataclass(slots=True)
class VectorRule:
    n: int
    when: Callable[[MarketArrays, dict[str, object]], V]
    subject: _Subject | None
    amount: Callable[[MarketArrays, dict[str, object]], V] | None

    def run(self, mk: MarketArrays) -> RuleResult:
        cache: dict[str, object] = {"__subject__": self.subject}
        with np.errstate(all="ignore"):
            w = self.when(mk, cache)
            n = (self.n,)
            fired = np.broadcast_to(np.asarray(w.v, dtype=bool), n)
            missing = np.zeros(n, dtype=bool) if w.m is None else np.broadcast_to(w.m, n)
            reason = np.zeros(n, dtype=np.int64) if w.r is None else np.broadcast_to(w.r, n)
            fired = fired & ~missing
            figs = _figures(mk, cache, self.subject) if self.subject is not None else None
            skipped = missing
            if figs is not None and figs.missing is not None:
                # fired, but the subject's legs lack data: it could not be opened
                cut = fired & figs.missing
                if cut.any():
                    skipped = missing | cut
                    assert figs.reason is not None
                    reason = np.where(cut, figs.reason, reason)
                    fired = fired & ~cut
            amounts = None
            if self.amount is not None:
                a = self.amount(mk, cache)
                amounts = np.broadcast_to(np.asarray(a.v, dtype=float), n)
                if a.m is not None:
                    cut = fired & np.broadcast_to(a.m, n)
                    if cut.any():
                        skipped = skipped | cut
                        reason = np.where(cut, FIGURES, reason)
                        fired = fired & ~cut
        return RuleResult(fired, skipped, reason, figs, amounts)


def _figures(mk: MarketArrays, cache: dict[str, object], s: _Subject | None) -> _Figures:
    got = cache.get("__figures__")
    if got is not None:
        return got  # type: ignore[return-value]
    assert s is not None
    # funding and basis subjects have the same legs and figures; rules over the
    # same variables share their subject arrays (deduplicated when compiled)
    family = "carry" if s.kind == "basis" else s.kind
    key = ("figures", family, id(s.coin), id(s.a), id(s.b))
    got = mk.memo.get(key)
    if got is None:
        got = _compute_figures(mk, s)
        mk.memo[key] = got
    cache["__figures__"] = got
    return got  # type: ignore[return-value]


def _compute_figures(mk: MarketArrays, s: _Subject) -> _Figures:
    c, a = s.coin, s.a
    fa = mk.by_kind["funding"][a, c]
    ma = mk.mark[a, c]
    if s.kind == "spread":
        assert s.b is not None
        b = s.b
        fb = mk.by_kind["funding"][b, c]
        mb = mk.mark[b, c]
        missing = np.isnan(fa) | np.isnan(ma) | np.isnan(fb) | np.isnan(mb)
        order = [("funding", a, fa), ("price", a, ma), ("funding", b, fb), ("price", b, mb)]
        edge = M.spread_edge(fa, fb)
        first_short = M.spread_first_short(fa, fb)
        fees = M.round_trip_fees(mk.perp_fee[a, c], mk.perp_fee[b, c])
        dev = M.pair_deviation(ma, mb)
        age = np.maximum(mk.perp_age[a, c], mk.perp_age[b, c])
    else:
        mid = mk.mid[a, c]
        bor = mk.by_kind["borrow"][a, c]
        if s.kind == "borrow":
            needs_borrow = np.ones_like(fa, dtype=bool)
        else:
            needs_borrow = M.carry_needs_borrow(fa)
        no_borrow = needs_borrow & np.isnan(bor)
        missing = np.isnan(fa) | np.isnan(ma) | np.isnan(mid) | no_borrow
        order = [("funding", a, fa), ("price", a, ma), ("spot_mid", a, mid), ("borrow", a, bor)]
        first_short = M.carry_first_short(fa)
        if s.kind == "borrow":
            edge = M.borrow_edge(fa, bor)
        else:
            edge = M.carry_edge(fa, bor)
        fees = M.round_trip_fees(mk.perp_fee[a, c], mk.spot_fee[a, c])
        idx = mk.index[a, c]
        # No index reported: the spot mid on the same exchange is the nearest
        # stand-in, and this subject trades that spot anyway.
        ref = np.where(np.isnan(idx), mid, idx)
        dev = M.index_deviation(ma, ref)
        age = np.maximum(mk.perp_age[a, c], mk.spot_age[a, c])
        age = np.where(needs_borrow, np.maximum(age, mk.borrow_age[a, c]), age)
    price_score = M.price_score(dev)
    fresh = M.fresh_score(age)
    confidence = M.confidence(price_score, fresh)
    breakeven = M.breakeven_s(edge, fees)
    risk = M.risk_level(confidence, breakeven)
    reason = None
    if missing.any():
        # the first missing datum in the order SnapshotEnv.figures reads them
        reason = np.zeros(missing.shape, dtype=np.int64)
        for kind, ex, values in reversed(order):
            gap = np.isnan(values)
            if kind == "borrow" and s.kind != "spread":
                gap = no_borrow
            reason = np.where(gap, mk.code(kind, ex, c), reason)
    figs = _Figures(
        edge,
        fees,
        breakeven,
        confidence,
        risk,
        missing if reason is not None else None,
        reason,
        dev,
        price_score,
        age,
        fresh,
        first_short,
    )
    return figs


# -- combining missing masks in evaluation order --------------------------------------


def _seq(a: V, b: V, value: object) -> V:
    """`a` evaluated, then `b` (everywhere): the first missing one gives the reason."""
    if a.m is None:
        return V(value, b.m, b.r)
    if b.m is None:
        return V(value, a.m, a.r)
    assert a.r is not None and b.r is not None  # a mask always comes with its reasons
    return V(value, a.m | b.m, np.where(a.m, a.r, b.r))


def _guarded(a: V, b: V, evaluated: object, value: object) -> V:
    """`a`, then `b` only where `evaluated` (short-circuit)."""
    if b.m is None:
        return V(value, a.m, a.r)
    bm = b.m & evaluated
    assert b.r is not None
    if a.m is None:
        return V(value, bm, np.where(bm, b.r, 0)) if bm.any() else V(value)
    assert a.r is not None
    return V(value, a.m | bm, np.where(a.m, a.r, np.where(bm, b.r, 0)))


_COMPARE = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply}

Fn = Callable[[MarketArrays, dict[str, object]], V]


class _Compiler:
    def __init__(self, program: Program, var_codes: list[np.ndarray], coins: dict[str, int]):
        self.p = program
        self.vars = var_codes
        self.coins = coins
        self.n_div = 0

    def compile(self, e: A.Expr) -> Fn:  # noqa: C901 - one branch per node type
        if isinstance(e, (A.Number, A.RateLit, A.MoneyLit)):
            const = V(float(e.value))
            return lambda mk, cx: const
        if isinstance(e, A.DurationLit):
            const = V(float(e.seconds))
            return lambda mk, cx: const
        if isinstance(e, A.CoinLit):
            const = V(self.coins.setdefault(e.symbol, len(self.coins)))
            return lambda mk, cx: const
        if isinstance(e, A.RiskMetric):
            return self._metric("risk")
        if isinstance(e, A.Name):
            return self._name(e)
        if isinstance(e, A.Call):
            return self._call(e)
        if isinstance(e, A.Neg):
            f = self.compile(e.operand)

            def neg(mk: MarketArrays, cx: dict[str, object]) -> V:
                x = f(mk, cx)
                return V(np.negative(x.v), x.m, x.r)

            return neg
        if isinstance(e, A.BinOp):
            return self._binop(e)
        if isinstance(e, A.Compare):
            fa, fb = self.compile(e.left), self.compile(e.right)
            op = _COMPARE[e.op]

            def compare(mk: MarketArrays, cx: dict[str, object]) -> V:
                a, b = fa(mk, cx), fb(mk, cx)
                return _seq(a, b, op(a.v, b.v))

            return compare
        if isinstance(e, A.And):
            fa, fb = self.compile(e.left), self.compile(e.right)

            def and_(mk: MarketArrays, cx: dict[str, object]) -> V:
                a, b = fa(mk, cx), fb(mk, cx)
                held = a.v if a.m is None else np.logical_and(a.v, ~a.m)
                return _guarded(a, b, held, np.logical_and(a.v, b.v))

            return and_
        if isinstance(e, A.Or):
            fa, fb = self.compile(e.left), self.compile(e.right)

            def or_(mk: MarketArrays, cx: dict[str, object]) -> V:
                a, b = fa(mk, cx), fb(mk, cx)
                failed = np.logical_not(a.v)
                if a.m is not None:
                    failed = failed & ~a.m
                return _guarded(a, b, failed, np.logical_or(a.v, b.v))

            return or_
        if isinstance(e, A.Not):
            f = self.compile(e.operand)

            def not_(mk: MarketArrays, cx: dict[str, object]) -> V:
                x = f(mk, cx)
                return V(np.logical_not(x.v), x.m, x.r)

            return not_
        raise TypeError(f"cannot vectorise {type(e).__name__}")

    def _name(self, e: A.Name) -> Fn:
        kind, value = self.p.names[id(e)]
        if kind == "var":
            codes = V(self.vars[int(value)])  # type: ignore[call-overload]
            return lambda mk, cx: codes
        if kind == "const":
            const = V(float(value))  # type: ignore[arg-type]
            return lambda mk, cx: const
        if kind == "level":
            const = V(int(value))  # type: ignore[call-overload]
            return lambda mk, cx: const
        if kind == "exchange":
            const = V(EX_INDEX[str(value)])
            return lambda mk, cx: const
        if kind == "metric":
            return self._metric(str(value))
        raise TypeError(f"cannot vectorise name of kind {kind}")  # position: exit clauses only

    def _metric(self, name: str) -> Fn:
        def metric(mk: MarketArrays, cx: dict[str, object]) -> V:
            figs = _figures(mk, cx, cx["__subject__"])  # type: ignore[arg-type]
            values = {
                "edge": figs.edge,
                "fees": figs.fees,
                "breakeven": figs.breakeven,
                "confidence": figs.confidence,
                "risk": figs.risk,
            }[name]
            if figs.missing is None:
                return V(values)
            return V(values, figs.missing, figs.reason)

        return metric

    def _call(self, e: A.Call) -> Fn:
        f = e.func
        if f == "net":
            fd = self.compile(e.args[0])
            edge, fees = self._metric("edge"), self._metric("fees")

            def net(mk: MarketArrays, cx: dict[str, object]) -> V:
                ev, d, fv = edge(mk, cx), fd(mk, cx), fees(mk, cx)
                value = M.net_rate(ev.v, fv.v, d.v)
                return _seq(_seq(ev, d, None), fv, value)

            return net
        if f == "apr":
            fr = self.compile(e.args[0])

            def apr(mk: MarketArrays, cx: dict[str, object]) -> V:
                x = fr(mk, cx)
                return V(M.apr(x.v), x.m, x.r)

            return apr
        if f == "abs":
            fa = self.compile(e.args[0])

            def abs_(mk: MarketArrays, cx: dict[str, object]) -> V:
                x = fa(mk, cx)
                return V(np.abs(x.v), x.m, x.r)

            return abs_
        if f in ("min", "max"):
            fs = [self.compile(a) for a in e.args]
            agg = np.minimum if f == "min" else np.maximum

            def minmax(mk: MarketArrays, cx: dict[str, object]) -> V:
                out = fs[0](mk, cx)
                for g in fs[1:]:
                    x = g(mk, cx)
                    out = _seq(out, x, agg(out.v, x.v))
                return out

            return minmax
        coin_f, *ex_fs = [self.compile(a) for a in e.args]
        if f == "spread":
            fa = self._market("funding", coin_f, ex_fs[0])
            fb = self._market("funding", coin_f, ex_fs[1])

            def spread(mk: MarketArrays, cx: dict[str, object]) -> V:
                a, b = fa(mk, cx), fb(mk, cx)
                return _seq(a, b, M.spread(a.v, b.v))

            return spread
        return self._market(f, coin_f, ex_fs[0])

    def _market(self, kind: str, coin_f: Fn, ex_f: Fn) -> Fn:
        def market(mk: MarketArrays, cx: dict[str, object]) -> V:
            c = coin_f(mk, cx).v
            x = ex_f(mk, cx).v
            # arguments are deduplicated arrays (or plain ints): their ids name them
            key = (kind, id(c) if isinstance(c, np.ndarray) else c,
                   id(x) if isinstance(x, np.ndarray) else x)
            got = mk.memo.get(key)
            if got is not None:
                return got  # type: ignore[return-value]
            values = mk.by_kind[kind][x, c]
            missing = np.isnan(values)
            if not missing.any():
                got = V(values)
            else:
                got = V(values, missing, np.where(missing, mk.code(kind, x, c), 0))
            mk.memo[key] = got
            return got

        return market

    def _binop(self, e: A.BinOp) -> Fn:
        fa, fb = self.compile(e.left), self.compile(e.right)
        if e.op in _ARITH:
            op = _ARITH[e.op]

            def arith(mk: MarketArrays, cx: dict[str, object]) -> V:
                a, b = fa(mk, cx), fb(mk, cx)
                return _seq(a, b, op(a.v, b.v))

            return arith
        # decoded by re-running the closures, which word the reason themselves
        code = DIV_ZERO - self.n_div
        self.n_div += 1

        def divide(mk: MarketArrays, cx: dict[str, object]) -> V:
            # the closures evaluate the denominator first, then check it for zero
            b, a = fb(mk, cx), fa(mk, cx)
            zero = np.asarray(b.v == 0)
            value = np.divide(a.v, np.where(zero, 1.0, b.v))
            z = V(None, zero, np.where(zero, code, 0)) if zero.any() else V(None)
            return _seq(_seq(b, z, None), a, value)

        return divide


@dataclass(slots=True)
class VectorRuleset:
    coins: dict[str, int]
    rules: list[VectorRule]


def _compile_ruleset(ruleset: Ruleset) -> VectorRuleset | None:
    program = ruleset.program
    if program is None or len(program.rules) != len(ruleset.rules):
        return None
    coins: dict[str, int] = {}
    shared: dict[bytes, np.ndarray] = {}

    def coin(sym: str) -> int:
        return coins.setdefault(sym, len(coins))

    def dedup(values: list[int]) -> np.ndarray:
        """One array object per distinct content, so results can be shared by id."""
        arr = np.array(values, np.intp)
        arr.setflags(write=False)
        return shared.setdefault(arr.tobytes(), arr)

    rules: list[VectorRule] = []
    for rule, checked in zip(ruleset.rules, program.rules, strict=True):
        bindings = rule.bindings
        var_codes: list[np.ndarray] = []
        for i, t in enumerate(checked.var_types):
            if t == "Exchange":
                var_codes.append(dedup([EX_INDEX[b.values[i]] for b in bindings]))
            else:
                var_codes.append(dedup([coin(b.values[i]) for b in bindings]))
        subject = None
        if rule.subject_kind is not None:
            subs = [b.subject for b in bindings]
            assert all(s is not None for s in subs)
            subject = _Subject(
                rule.subject_kind,
                dedup([coin(s.coin) for s in subs]),  # type: ignore[union-attr]
                dedup([EX_INDEX[s.exchanges[0]] for s in subs]),  # type: ignore[union-attr]
                dedup([EX_INDEX[s.exchanges[1]] for s in subs])  # type: ignore[union-attr]
                if rule.subject_kind == "spread"
                else None,
            )
        comp = _Compiler(program, var_codes, coins)
        when = comp.compile(checked.rule.when)
        hedges = [comp.compile(a.amount) for a in checked.rule.actions if isinstance(a, A.Hedge)]
        rules.append(VectorRule(len(bindings), when, subject, _sum(hedges) if hedges else None))
    return VectorRuleset(coins, rules)


def _sum(fns: list[Fn]) -> Fn:
    """Hedge amounts added in order, as `sum()` over the closures does."""

    def total(mk: MarketArrays, cx: dict[str, object]) -> V:
        out = V(0)
        for f in fns:
            x = f(mk, cx)
            out = _seq(out, x, out.v + x.v)
        return out

    return total


_CACHE: dict[int, tuple[Ruleset, VectorRuleset | None]] = {}


def vector_ruleset(ruleset: Ruleset) -> VectorRuleset | None:
    """The ruleset compiled for arrays, once per ruleset object (a few kept)."""
    hit = _CACHE.get(id(ruleset))
    if hit is not None and hit[0] is ruleset:
        return hit[1]
    compiled = _compile_ruleset(ruleset)
    if len(_CACHE) >= 8:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(ruleset)] = (ruleset, compiled)
    return compiled
