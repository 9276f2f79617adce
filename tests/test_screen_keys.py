"""`rulebook screen`'s keys: what each does to the order, and the key reader on a
real pseudo-terminal (cbreak while it reads, the terminal's own settings after)."""

from __future__ import annotations

import io
import os
import termios

from rulebook.app._keys import KeyReader
from rulebook.app._screen import SORT_KEYS
from rulebook.app._screen_session import KEYS, ScreenSettings, on_key


def test_every_sort_has_a_key_and_each_key_sorts() -> None:
    assert sorted(KEYS.values()) == sorted(SORT_KEYS)
    assert len(set(KEYS) | {"r", "q"}) == len(KEYS) + 2  # no key does two things
    s = ScreenSettings(coins=["BTC"], exchanges=["okx"], ruleset=None)
    assert on_key(s, "a") == "sort" and (s.sort, s.reverse) == ("apr", False)
    assert on_key(s, "r") == "sort" and (s.sort, s.reverse) == ("apr", True)
    assert on_key(s, "R") == "sort" and (s.sort, s.reverse) == ("apr", False)
    on_key(s, "r")
    assert on_key(s, "V") == "sort" and (s.sort, s.reverse) == ("volume", False)  # a new order
    assert on_key(s, "x") is None and on_key(s, "\x1b") is None  # not the screen's
    assert (s.sort, s.reverse) == ("volume", False)
    assert on_key(s, "q") == "quit"


def test_key_reader_on_a_pseudo_terminal() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        with open(slave, closefd=False) as tty_in, KeyReader(tty_in) as keys:
            assert keys.active
            during = termios.tcgetattr(slave)
            assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
            assert during[3] & termios.ISIG  # Ctrl-C still interrupts
            assert keys.wait(0.01) == ""  # nothing typed: waits, returns nothing
            os.write(master, b"c")
            assert keys.wait(5.0) == "c"  # at once, without Enter
        assert termios.tcgetattr(slave) == before  # restored on the way out
        try:
            with open(slave, closefd=False) as tty_in, KeyReader(tty_in):
                raise KeyboardInterrupt  # Ctrl-C
        except KeyboardInterrupt:
            pass
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_key_reader_without_a_terminal() -> None:
    with KeyReader(io.StringIO("a")) as keys:
        assert not keys.active
        assert keys.wait(0.0) == ""  # a pipe or a test's runner: no keys, --sort still works
