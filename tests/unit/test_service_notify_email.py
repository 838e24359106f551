"""E-mail notifications, sent to a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.receivers import SmtpReceiver, self_signed

from haprotect.errors import InputError
from haprotect.ports import free_ports
from haprotect.service.notify.config import EmailConfig
from haprotect.service.notify.email import EmailTarget
from haprotect.service.notify.notification import Kind, Notification
from haprotect.service.notify.target import DeliveryError

BREACH = Notification(
    Kind.RPO_BREACH,
    "RPO breached: lab/shop/pgdata",
    "The data set pgdata of shop is not protected as its schedule (0 * * * *) promises.",
    {"cluster": "lab", "application": "shop", "dataset": "pgdata"},
    datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
)
PASSWORD = "smtp-pw-93be1-not-for-logs"


def config(port: int, **options: object) -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "sender": "haprotect@example.com",
            "to": ["backup-team@example.com", "Oncall <oncall@example.com>"],
            **options,
        }
    )


def test_one_message_per_notification_with_a_clear_subject() -> None:
    with SmtpReceiver().running() as smtp:
        EmailTarget(config(smtp.port)).send(BREACH)
    (mail,) = smtp.messages
    assert mail["Subject"] == "[haprotect] RPO breached: lab/shop/pgdata"
    assert mail["From"] == "haprotect@example.com"
    assert smtp.envelopes == [
        ("haprotect@example.com", ["backup-team@example.com", "oncall@example.com"])
    ]
    assert mail["X-Haprotect-Kind"] == "rpo_breach"
    body = mail.get_content()
    assert BREACH.text in body
    assert "application: shop" in body
    assert "dataset:     pgdata" in body


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


def test_starttls_and_login(cert: tuple[Path, Path], tmp_path: Path) -> None:
    password_file = tmp_path / "smtp.password"
    password_file.write_text(PASSWORD + "\n")
    with SmtpReceiver(tls="starttls", cert=cert, password=PASSWORD).running() as smtp:
        target = EmailTarget(
            config(
                smtp.port,
                security="starttls",
                ca_file=str(cert[0]),
                username="haprotect",
                password_file=str(password_file),
            )
        )
        target.send(BREACH)
    assert smtp.logins == [("haprotect", PASSWORD)]
    assert len(smtp.messages) == 1


def test_tls_from_the_start(cert: tuple[Path, Path]) -> None:
    with SmtpReceiver(tls="ssl", cert=cert).running() as smtp:
        EmailTarget(config(smtp.port, security="ssl", ca_file=str(cert[0]))).send(BREACH)
    assert len(smtp.messages) == 1


def test_an_untrusted_certificate_is_refused(cert: tuple[Path, Path]) -> None:
    with (
        SmtpReceiver(tls="starttls", cert=cert).running() as smtp,
        pytest.raises(DeliveryError, match="TLS failed"),
    ):
        EmailTarget(config(smtp.port, security="starttls")).send(BREACH)
    assert smtp.messages == []


def test_a_refused_login_is_not_retried_and_shows_no_password(cert: tuple[Path, Path]) -> None:
    waits: list[float] = []
    wrong = "wrong-" + PASSWORD
    with SmtpReceiver(tls="starttls", cert=cert, password=PASSWORD).running() as smtp:
        target = EmailTarget(
            config(
                smtp.port,
                security="starttls",
                ca_file=str(cert[0]),
                username="haprotect",
                password=wrong,
            ),
            sleep=waits.append,
        )
        with pytest.raises(DeliveryError, match="refused: 535") as raised:
            target.send(BREACH)
    assert waits == []
    assert wrong not in str(raised.value)
    assert smtp.messages == []


def test_an_unreachable_server_is_retried_then_fails() -> None:
    (port,) = free_ports(1)
    waits: list[float] = []
    with pytest.raises(DeliveryError, match="not sent after 2 attempts"):
        EmailTarget(config(port, attempts=2), sleep=waits.append).send(BREACH)
    assert waits == [1.0]


def test_a_server_without_starttls_is_refused_when_it_is_asked_for() -> None:
    with SmtpReceiver().running() as smtp, pytest.raises(DeliveryError, match="STARTTLS"):
        EmailTarget(config(smtp.port, security="starttls")).send(BREACH)
    assert smtp.messages == []


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(InputError, match=f"cannot read ca_file {missing}"):
        EmailTarget(config(25, security="starttls", ca_file=str(missing)))
