"""Text to syntax tree: Lark's LALR parse, then a transform into the typed AST.

Syntax errors become E001 diagnostics. After one, the statement holding it is
blanked out and the file parsed again, so later statements are still checked.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import cast

import lark
from lark import Token, Transformer

from . import _ast as A
from ._diagnostics import Diagnostic

__all__ = ["parse_text", "parse_bytes", "grammar_text", "raw_parser"]

_KEYWORDS = "set let rule for in when then exit risk and or not hedge close alert".split()
_STATEMENT_START = re.compile(r"^(set|let|rule|when|risk)(?![a-z0-9_])", re.M)
_DEFINED_NAME = re.compile(r"\b(?:set|let|rule)\s+([a-z_][a-z0-9_]*)")
_WORD = re.compile(r"(?<![A-Za-z0-9_])[a-z_][a-z0-9_]*")
_MAX_RECOVERIES = 50

# Lark's terminal names, as an operator would say them.
_TOKEN_WORDS = {
    "NAME": "a name",
    "COIN": "a coin",
    "NUMBER": "a number",
    "RATE": "a rate",
    "MONEY": "an amount of money",
    "DURATION": "a duration",
    "STRING": "a string",
    "COMP_OP": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*' or '/'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "MINUS": "'-'",
    "NEG": "'-'",
    "$END": "the end of the file",
}


def _word(term: str) -> str:
    if term in _TOKEN_WORDS:
        return _TOKEN_WORDS[term]
    if term.lower() in _KEYWORDS:
        return f"'{term.lower()}'"
    return term


def grammar_text() -> str:
    """The grammar: inside the installed wheel, or at the top of a checkout."""
    packaged = resources.files("rulebook").joinpath("_grammar/rulebook.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "grammar" / "rulebook.lark").read_text(
        encoding="utf-8"
    )


_OPTIONS = dict(parser="lalr", lexer="contextual", maybe_placeholders=False)


def _cache_file() -> str | bool:
    """Where Lark keeps its analysed grammar between processes, or False for no cache.

    Building the LALR tables takes 20-35 ms of every `rulebook validate`; loading
    them back takes 3 ms. Lark stores the grammar's and the options' sha256 in
    the file and rebuilds (and rewrites) on any mismatch, a partial file
    included, so a changed grammar or Lark version never loads stale tables.
    The file is a pickle, so it lives in the user's own cache directory, never
    a shared temporary one. RULEBOOK_NO_PARSER_CACHE=1 turns it off.
    """
    if os.environ.get("RULEBOOK_NO_PARSER_CACHE"):
        return False
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rulebook"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return str(root / f"grammar-lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.cache")


@lru_cache(maxsize=1)
def raw_parser() -> lark.Lark:
    """Lark's parser producing a plain parse tree (for tools and the benchmark)."""
    return lark.Lark(grammar_text(), cache=_cache_file(), **_OPTIONS)


@lru_cache(maxsize=1)
def _ast_parser() -> tuple[lark.Lark, _ToAst, threading.Lock]:
    """The parser rulebook uses, built once per process: it runs the AST
    transformer inline, so no intermediate parse tree is ever built."""
    to_ast = _ToAst("<text>")
    parser = lark.Lark(grammar_text(), transformer=to_ast, cache=_cache_file(), **_OPTIONS)
    return parser, to_ast, threading.Lock()


# -- tree to AST ---------------------------------------------------------------


def _unit_value(text: str) -> tuple[float, str]:
    m = re.match(r"(\d+(?:\.\d*)?|\.\d+)(e[+-]?\d+)?", text)
    assert m is not None  # the lexer guarantees it
    return float(m.group(0)), text[m.end() :].strip()


_DURATION_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class _ToAst(Transformer):
    """Builds the AST while Lark parses (inline: no parse tree is built).

    Lark cannot pass positions to an inline transformer, so each node's span
    runs from its first to its last child, tokens included; the grammar keeps
    the tokens (`when`, `not`, `)`...) at which a span must start or end."""

    def __init__(self, path: str):
        super().__init__(visit_tokens=False)
        self.path = path

    def _span(self, first: object, last: object | None = None) -> A.Span:
        a = _start_of(first)
        b = _end_of(last if last is not None else first)
        return A.Span(self.path, a[0], a[1], b[0], b[1])

    # literals and atoms
    def number(self, c):
        return A.Number(self._span(c[0]), float(c[0]), str(c[0]))

    def rate(self, c):
        return A.RateLit(self._span(c[0]), float(str(c[0])[:-1]) / 100.0, str(c[0]))

    def money(self, c):
        value, unit = _unit_value(str(c[0]))
        return A.MoneyLit(self._span(c[0]), value, unit, str(c[0]))

    def duration(self, c):
        value, unit = _unit_value(str(c[0]))
        return A.DurationLit(self._span(c[0]), value * _DURATION_SECONDS[unit], str(c[0]))

    def coin(self, c):
        return A.CoinLit(self._span(c[0]), str(c[0]))

    def name(self, c):
        return A.Name(self._span(c[0]), str(c[0]))

    def risk_metric(self, c):
        return A.RiskMetric(self._span(c[0]))

    def call(self, c):
        func: Token = c[0]
        return A.Call(self._span(func, c[-1]), str(func), self._span(func), list(c[1:-1]))

    def paren(self, c):
        inner: A.Expr = c[1]
        inner.span = self._span(c[0], c[2])  # carets cover the parentheses too
        return inner

    def neg(self, c):
        return A.Neg(self._span(c[0], c[1]), c[1])

    def binop(self, c):
        return A.BinOp(self._span(c[0], c[2]), str(c[1]), c[0], c[2])

    def compare(self, c):
        return A.Compare(self._span(c[0], c[2]), str(c[1]), c[0], c[2])

    def and_(self, c):
        return self._chain(A.And, c[0], c[1])

    def or_(self, c):
        return self._chain(A.Or, c[0], c[1])

    def _chain(self, kind, left, right):
        """`a and b and c` as one node of three terms. The grammar is left
        recursive, so `left` is the chain so far; a parenthesised group
        (its span starts before its first term) stays a term of its own."""
        if isinstance(left, kind) and _start_of(left) == _start_of(left.terms[0]):
            left.terms.append(right)
            left.span = self._span(left, right)
            return left
        return kind(self._span(left, right), [left, right])

    def not_(self, c):
        return A.Not(self._span(c[0], c[1]), c[1])

    # statements
    def coin_item(self, c):
        return A.SetItem(str(c[0]), True, self._span(c[0]))

    def name_item(self, c):
        return A.SetItem(str(c[0]), False, self._span(c[0]))

    def set_def(self, c):
        return A.SetDef(str(c[0]), self._span(c[0]), list(c[1:]), self._span(c[0], c[-1]))

    def let_def(self, c):
        return A.LetDef(str(c[0]), self._span(c[0]), c[1], self._span(c[0], c[1]))

    def set_source(self, c):
        return ("set", str(c[0]), self._span(c[0]))

    def list_source(self, c):
        return ("list", list(c), self._span(c[0], c[-1]))

    def for_binding(self, c):
        var, (kind, value, span) = c
        return A.ForBinding(
            str(var),
            self._span(var),
            value if kind == "set" else None,
            value if kind == "list" else None,
            span,
        )

    def for_clause(self, c):
        return list(c)

    def hedge(self, c):
        return A.Hedge(c[1], self._span(c[0], c[1]))

    def close(self, c):
        return A.Close(self._span(c[0]))

    def alert(self, c):
        raw = str(c[1])[1:-1]
        return A.Alert(re.sub(r"\\([\"\\])", r"\1", raw), self._span(c[0], c[1]))

    def actions(self, c):
        return list(c)

    def exit_clause(self, c):
        return c[-1]  # after the kept `when` token

    def rule_body(self, c):
        # c: WHEN, when-expr, actions, [exit expr]
        exit_when = c[3] if len(c) > 3 else None
        last = exit_when if exit_when is not None else c[2][-1]
        return (c[1], c[2], exit_when, self._span(c[0], last))

    def named_rule(self, c):
        name: Token = c[0]
        fors = c[1] if len(c) == 3 else []
        when, actions, exit_when, body_span = c[-1]
        span = self._span(name).to(body_span)
        return A.Rule(str(name), self._span(name), False, fors, when, actions, exit_when, span)

    def inline_rule(self, c):
        when, actions, exit_when, span = c[0]
        stem = Path(self.path).stem
        return A.Rule(f"{stem}:{span.line}", span, True, [], when, actions, exit_when, span)

    def risk_item(self, c):
        return A.RiskItem(str(c[0]), self._span(c[0]), c[1], self._span(c[0], c[1]))

    def risk_block(self, c):
        return A.RiskBlock(list(c[1:]), self._span(c[0], c[-1]))

    def start(self, c):
        return list(c)


def _start_of(x: object) -> tuple[int, int]:
    if isinstance(x, Token):
        return x.line, x.column  # type: ignore[return-value]
    span: A.Span = x.span  # type: ignore[attr-defined]
    return span.line, span.column


def _end_of(x: object) -> tuple[int, int]:
    if isinstance(x, Token):
        return x.end_line, x.end_column  # type: ignore[return-value]
    span: A.Span = x.span  # type: ignore[attr-defined]
    return span.end_line, span.end_column


# -- syntax errors -----------------------------------------------------------------


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _end_of_text(text: str) -> tuple[int, int]:
    stripped = text.rstrip()
    if not stripped:
        return 1, 1
    return _line_col(text, len(stripped))


def _expected_words(expected: object) -> str:
    words = sorted({_word(t) for t in expected if not str(t).startswith("__")})  # type: ignore[attr-defined]
    if not words:
        return ""
    if len(words) > 6:
        words = words[:6] + ["..."]
    return "expected " + ", ".join(words)


def _syntax_diagnostic(
    path: str, text: str, err: lark.exceptions.UnexpectedInput
) -> tuple[Diagnostic, int]:
    """An E001 diagnostic for a Lark error, and the error's offset in the text."""
    if isinstance(err, lark.exceptions.UnexpectedEOF) or (
        isinstance(err, lark.exceptions.UnexpectedToken) and err.token.type == "$END"
    ):
        # Lark reports the end of input at line -1: point at the last character.
        line, col = _end_of_text(text)
        span = A.Span(path, line, col, line, col + 1)
        expected = _expected_words(getattr(err, "expected", ()))
        msg = "unexpected end of file" + (f"; {expected}" if expected else "")
        return Diagnostic.at(span, "E001", msg, "a statement is not complete"), len(text)

    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        pos = err.pos_in_stream or 0  # always set for this error; typed Optional
        rest = text[pos:]
        line, col = _line_col(text, pos)
        if rest.startswith('"'):
            bad = _bad_escape(rest)
            if bad is not None:
                span = A.Span(path, line, col + bad, line, col + bad + 2)
                msg = f"unknown escape '{rest[bad : bad + 2]}' in a string"
                hint: str | None = 'the only escapes are \\" and \\\\'
                return Diagnostic.at(span, "E001", msg, hint), pos
            end = rest.find("\n")
            width = len(rest) if end < 0 else end
            span = A.Span(path, line, col, line, col + max(width, 1))
            return (
                Diagnostic.at(
                    span, "E001", "unterminated string", 'close it with " on the same line'
                ),
                pos,
            )
        unit = re.match(r"((?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*([A-Za-z_][A-Za-z0-9_]*)", rest)
        if unit:
            span = A.Span(path, line, col, line, col + unit.end())
            msg = f"bad unit '{unit.group(2)}' after {unit.group(1)}"
            return (
                Diagnostic.at(span, "E001", msg, "units are %, USDT, USDC, s, m, h and d"),
                pos,
            )
        ch = rest[:1]
        span = A.Span(path, line, col, line, col + 1)
        hint = None
        if ch.isalpha() and ch.isupper():
            hint = "coins are all upper-case (SOL); names are lower-case (min_edge)"
        elif ch == "%":
            hint = "write the rate with no space: 0.1%"
        return Diagnostic.at(span, "E001", f"unexpected character {ch!r}", hint), pos

    assert isinstance(err, lark.exceptions.UnexpectedToken)
    tok = err.token
    span = A.Span(
        path, tok.line, tok.column, tok.end_line or tok.line, tok.end_column or tok.column + 1
    )
    shown = str(tok)
    expected = _expected_words(_possible(err.expected, text, tok.start_pos or 0))
    kind = {"NAME": "name", "COIN": "coin", "NUMBER": "number", "STRING": "string"}.get(tok.type)
    msg = f"unexpected {kind} '{shown}'" if kind else f"unexpected '{shown}'"
    hint = expected or None
    if tok.type.lower() in _KEYWORDS:
        msg = f"unexpected keyword '{shown}'"
        if tok.column == 1 and _STATEMENT_START.match(shown):
            hint = f"the statement before this '{shown}' is not complete"
        elif "NAME" in err.expected and set(err.expected) <= {"NAME", "COIN"}:
            hint = f"'{shown}' is a reserved word and cannot be used as a name"
        elif "NUMBER" in err.expected:
            # where a value may start, the keyword is not a name: the value is missing
            hint = f"a value is missing before '{shown}'"
    elif tok.type == "COMP_OP" and "NUMBER" in err.expected:
        hint = f"a value is missing before '{shown}'"
    elif tok.type == "COMP_OP" and err.expected and "COMP_OP" not in err.expected:
        hint = "comparisons cannot be chained: write `a < b and b < c`"
    return Diagnostic.at(span, "E001", msg, hint), tok.start_pos or 0


def _bad_escape(rest: str) -> int | None:
    """The offset of an unknown escape in the string that rest starts with, if
    the string is closed on its line (else it is simply unterminated)."""
    i, bad = 1, None
    while i < len(rest) and rest[i] != "\n":
        if rest[i] == '"':
            return bad
        if rest[i] == "\\":
            if bad is None and rest[i + 1 : i + 2] not in ('"', "\\"):
                bad = i
            i += 2
            continue
        i += 1
    return None


def _possible(expected: object, text: str, pos: int) -> set[str]:
    """The tokens that can really come next. LALR merges parser states that
    look alike, so Lark's expected set may hold tokens of another statement:
    after `let a = 0.05%` it offers a name (as after a risk limit's value)."""
    found = {str(t) for t in expected}  # type: ignore[attr-defined]
    start, _ = _statement_bounds(text, pos)
    stmt = text[start:pos]
    if found & {"LET", "SET", "RULE", "WHEN", "RISK"} and not stmt.startswith("risk"):
        found.discard("NAME")  # a risk key, only inside a risk block
    if stmt.count("[") <= stmt.count("]"):
        found.discard("RSQB")
    else:  # inside a `for` list, no statement can start
        found -= {"LET", "SET", "RULE", "WHEN", "RISK", "$END"}
    if stmt.count("(") <= stmt.count(")"):
        found.discard("RPAR")
    else:  # inside parentheses, neither a clause nor a statement can start
        found -= {"LET", "SET", "RULE", "WHEN", "RISK", "$END", "THEN", "EXIT"}
    return found


def _blank(text: str, start: int, end: int) -> str:
    """Replace text[start:end] by spaces, keeping newlines so positions stay."""
    return text[:start] + re.sub(r"[^\n]", " ", text[start:end]) + text[end:]


def _statement_bounds(text: str, pos: int) -> tuple[int, int]:
    """The top-level statement around pos: from the last statement keyword at
    a line start at or before pos to the next one after it."""
    starts = [m.start() for m in _STATEMENT_START.finditer(text)]
    earlier = [s for s in starts if s < pos]
    if pos in starts and earlier:
        # The token that failed starts the next statement: the statement before
        # it is the incomplete one. A `when` at a line start may be the body of
        # a `rule` before it, so then both go.
        if text.startswith("when", pos) and text.startswith("rule", earlier[-1]):
            after = [s for s in starts if s > pos]
            return earlier[-1], after[0] if after else len(text)
        return earlier[-1], pos
    before = [s for s in starts if s <= pos]
    start = before[-1] if before else 0
    after = [s for s in starts if s > max(pos, start)]
    end = after[0] if after else len(text)
    return start, end


# -- entry points --------------------------------------------------------------------


def parse_text(text: str, path: str = "<text>") -> tuple[A.RulesFile, list[Diagnostic]]:
    """Parse one file's text into a RulesFile, with every syntax error found."""
    parser, to_ast, lock = _ast_parser()
    diags: list[Diagnostic] = []
    lost: set[str] = set()
    words: set[str] = set()
    work = text
    for _ in range(_MAX_RECOVERIES):
        try:
            with lock:  # the inline transformer carries the file's path
                to_ast.path = path
                statements = parser.parse(work)
        except lark.exceptions.UnexpectedInput as err:
            diag, pos = _syntax_diagnostic(path, work, err)
            diags.append(diag)
            start, end = _statement_bounds(work, min(pos, len(work) - 1) if work else 0)
            lost.update(_DEFINED_NAME.findall(work[start:end]))
            words.update(_WORD.findall(work[start:end]))
            if not work[start:end].strip():
                break
            work = _blank(work, start, end)
            continue
        # the inline transformer makes the "tree" the list of statements
        return A.RulesFile(path, text, cast("list[A.Statement]", statements), lost, words), diags
    return A.RulesFile(path, text, [], lost, words), diags


def parse_bytes(data: bytes, path: str) -> tuple[A.RulesFile, list[Diagnostic]]:
    """Decode a file as UTF-8 (a bad byte is an error with its location) and parse it.

    After a bad byte the file is still checked, with the byte replaced by
    U+FFFD, so that its other errors are reported and the names it defines do
    not turn into "unknown name" errors in the other files of the ruleset."""
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark is harmless
        data = data[3:]
    try:
        return parse_text(data.decode("utf-8"), path)
    except UnicodeDecodeError as err:
        good = data[: err.start].decode("utf-8")
        line, col = _line_col(good, len(good))
        span = A.Span(path, line, col, line, col + 1)
        diag = Diagnostic.at(
            span,
            "E001",
            f"file is not UTF-8: byte 0x{data[err.start]:02x} cannot be decoded",
            "save the file as UTF-8",
        )
    rf, diags = parse_text(data.decode("utf-8", errors="replace"), path)
    # the replacement character at the bad byte is the same mistake
    return rf, [diag, *(d for d in diags if (d.line, d.column) != (line, col))]
