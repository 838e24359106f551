"""The notifications config: typed, strict, with errors that name the option."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from haprotect.errors import InputError
from haprotect.service.notify.config import EmailConfig, NotificationsConfig, WebhookConfig
from haprotect.service.notify.notification import Kind

EMAIL = {
    "type": "email",
    "host": "smtp.example.com",
    "sender": "haprotect@example.com",
    "to": ["ops@example.com"],
}


def error(data: object) -> str:
    with pytest.raises(ValidationError) as raised:
        NotificationsConfig.model_validate(data)
    return str(raised.value)


def test_targets_are_told_apart_by_type() -> None:
    config = NotificationsConfig.model_validate(
        {"targets": [{"type": "webhook", "url": "https://alerts.example.com/h"}, EMAIL]}
    )
    webhook, email = config.targets
    assert isinstance(webhook, WebhookConfig) and isinstance(email, EmailConfig)
    assert webhook.kinds == frozenset(Kind)
    assert email.smtp_port() == 587
    assert email.label() == "email ops@example.com via smtp.example.com"
    assert NotificationsConfig().targets == []


def test_an_unknown_option_is_named() -> None:
    message = error({"targets": [{"type": "webhook", "url": "https://a.example/h", "urll": 1}]})
    assert "targets.0.webhook.urll" in message
    assert "Extra inputs are not permitted" in message


def test_an_unknown_type_or_kind_is_named() -> None:
    assert "expected tags: 'webhook', 'email'" in error({"targets": [{"type": "pager"}]})
    message = error({"targets": [{**EMAIL, "kinds": ["failure", "fire"]}]})
    assert "targets.0.email.kinds.1" in message and "Input should be 'failure'" in message


def test_urls_and_addresses_are_checked() -> None:
    message = error({"targets": [{"type": "webhook", "url": "ftp://u:pw@a.example/h"}]})
    assert "not an http:// or https:// URL" in message
    assert "u:<redacted>@" in message
    assert "pw@" not in message
    assert "not an e-mail address: 'ops'" in error({"targets": [{**EMAIL, "to": ["ops"]}]})
    assert "targets.0.email.to" in error({"targets": [{**EMAIL, "to": []}]})


def test_a_secret_is_given_once() -> None:
    assert "hush" not in error(
        {"targets": [{"type": "webhook", "url": "https://a.example/h", "bearer_token": ["hush"]}]}
    )
    message = error(
        {
            "targets": [
                {
                    "type": "webhook",
                    "url": "https://a.example/h",
                    "bearer_token": "x",
                    "bearer_token_file": "/etc/t",
                }
            ]
        }
    )
    assert "bearer_token and bearer_token_file are exclusive" in message


def test_a_login_needs_both_halves_and_tls() -> None:
    assert "go together" in error({"targets": [{**EMAIL, "username": "u"}]})
    assert "go together" in error({"targets": [{**EMAIL, "password": "p"}]})
    message = error({"targets": [{**EMAIL, "security": "none", "username": "u", "password": "p"}]})
    assert "a login needs security: starttls or ssl" in message


def test_secrets_are_not_shown(tmp_path: Path) -> None:
    config = EmailConfig.model_validate({**EMAIL, "username": "u", "password": "sesame-42"})
    assert "sesame-42" not in repr(config) and "sesame-42" not in str(config.model_dump())
    assert config.login_password() == "sesame-42"


def test_an_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "token"
    config = WebhookConfig.model_validate(
        {"type": "webhook", "url": "https://a.example/h", "hmac_secret_file": str(missing)}
    )
    with pytest.raises(InputError, match=f"cannot read hmac_secret_file {missing}"):
        config.signing_key()
    missing.write_text("\n")
    with pytest.raises(InputError, match="is empty"):
        config.signing_key()
