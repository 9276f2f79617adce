"""Issue 14: secrets masked in every message, log, event and notification (attack 6)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rulebook._text import MaskingFilter, mask_secrets, mask_url, register_secret, terminal_safe
from rulebook.cli import app
from rulebook.trading import Notifier

SECRET = "APIKEY_S3CRET"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"badscheme://{SECRET}@host", "badscheme://***@host"),
        ("tgram://123456:ABCDEF-bot-token/987654", "tgram://***"),
        ("mailto://user:p4ssw0rd@example.com", "mailto://***@example.com"),
        ("json://localhost:8080/hook?token=abc", "json://***"),
        ("discord://webhook_id/webhook_token", "discord://***"),
        (
            "https://user:pw@api.example.com/v1/orders?apiKey=K&signature=S",
            "https://***@api.example.com/v1/orders?apiKey=***&signature=***",
        ),
        ("https://api.binance.com/api/v3/ticker", "https://api.binance.com/api/v3/ticker"),
    ],
)
def test_a_url_keeps_no_credential_or_token(url: str, shown: str):
    assert mask_url(url) == shown
    assert mask_secrets(f"failed: {url} (timeout)") == f"failed: {shown} (timeout)"


def test_a_registered_secret_is_masked_anywhere_in_a_text():
    register_secret("k3y-0f-th3-0p3rat0r")
    assert mask_secrets("auth failed for k3y-0f-th3-0p3rat0r!") == "auth failed for ***!"
    register_secret("ab")  # too short to mask safely: ignored
    assert mask_secrets("about") == "about"


def test_log_records_are_masked_by_the_filter():
    record = logging.LogRecord("apprise", logging.WARNING, __file__, 1, "Unsupported URL %s", (f"badscheme://{SECRET}@host",), None)
    MaskingFilter().filter(record)
    assert SECRET not in record.getMessage()
    assert "badscheme://***@host" in record.getMessage()


def test_apprises_own_warning_about_a_bad_url_is_masked(caplog):
    with caplog.at_level(logging.DEBUG):
        notifier = Notifier([f"badscheme://{SECRET}@host"], ["open"])
    assert notifier.bad_urls_shown == ["badscheme://***@host"]
    assert SECRET not in caplog.text


def test_a_notification_body_carries_no_secret(monkeypatch):
    notifier = Notifier(["json://localhost:9/hook"], ["error"])
    sent: list[str] = []
    monkeypatch.setattr(notifier._apprise, "notify", lambda body, title: sent.append(body) or True)
    notifier.send("error", f"exchange said: bad key https://x.io/api?apiKey={SECRET} at json://localhost:9/hook")
    assert sent and SECRET not in sent[0] and "localhost:9/hook" not in sent[0]


def test_run_with_an_unknown_apprise_url_never_prints_its_token(tmp_path: Path):
    # the attack: `badscheme://APIKEY_S3CRET@host` printed in full in the warning
    rules = tmp_path / "r.rules"
    rules.write_text("when funding(SOL, binance) > 0% then hedge 100 USDT\n")
    snap = tmp_path / "s.jsonl"
    snap.write_text(
        json.dumps({"ts": 1753112400000, "exchange": "binance", "coin": "SOL", "market": "perp",
                    "funding_rate": 0.001, "funding_interval_h": 8, "mark": 100.0})
        + "\n"
    )  # fmt: skip
    cfg = tmp_path / "rulebook.toml"
    cfg.write_text(f'[notify]\nurls = ["badscheme://{SECRET}@host"]\n')
    res = CliRunner().invoke(
        app,
        ["run", str(rules), "--paper", "--replay", str(snap), "--db", str(tmp_path / "p.db"),
         "--config", str(cfg), "--no-watch"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "badscheme://***@host" in res.stderr
    assert SECRET not in res.stdout and SECRET not in res.stderr


def test_an_error_message_is_masked_and_escaped(tmp_path: Path):
    res = CliRunner().invoke(app, ["validate", str(tmp_path / f"\x1b[2Jx-{SECRET}.rules")])
    assert res.exit_code == 2
    assert "\x1b" not in res.stderr and "␛[2J" in res.stderr


def test_terminal_safe_cuts_with_a_count():
    text = terminal_safe("a" * 1000, 100)
    assert text.startswith("a" * 100) and text.endswith("(900 more characters)")
    assert terminal_safe("right\u202eleft") == "right<U+202E>left"
    assert terminal_safe("one\ntwo") == "one␤two"
    assert terminal_safe("one\ntwo", keep_newlines=True) == "one\ntwo"
