"""Webhook notifications, sent to a real HTTP receiver on loopback."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import pytest
from tests.receivers import WebhookReceiver

from haprotect.ports import free_ports
from haprotect.service.notify.config import WebhookConfig
from haprotect.service.notify.notification import Kind, Notification, payload
from haprotect.service.notify.target import DeliveryError
from haprotect.service.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookTarget,
    signature,
)

FAILED = Notification(
    Kind.FAILURE,
    "backup of group:lab/shop failed",
    "The backup run of group:lab/shop failed.",
    {"job": "group:lab/shop", "outcome": "failed"},
    datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
)
TOKEN = "tok-7f3a9c-not-for-logs"
KEY = "hmac-51d2e8-not-for-logs"


def target(url: str, waits: list[float], **options: object) -> WebhookTarget:
    config = WebhookConfig.model_validate({"type": "webhook", "url": url, **options})
    return WebhookTarget(config, sleep=waits.append, clock=lambda: 1_796_644_800.0)


def test_a_notification_is_posted_as_json_and_retried_on_503() -> None:
    waits: list[float] = []
    with WebhookReceiver(statuses=[503, 503]).running() as receiver:
        target(receiver.url, waits).send(FAILED)
    assert len(receiver.requests) == 3
    assert waits == [1.0, 2.0]
    last = receiver.requests[-1]
    assert last.headers["Content-Type"] == "application/json"
    assert last.json() == payload(FAILED)
    assert last.json()["kind"] == "failure"
    assert last.json()["fields"] == {"job": "group:lab/shop", "outcome": "failed"}


def test_the_bearer_token_and_the_signature_are_sent() -> None:
    with WebhookReceiver().running() as receiver:
        target(receiver.url, [], bearer_token=TOKEN, hmac_secret=KEY).send(FAILED)
    (request,) = receiver.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    stamp = request.headers[TIMESTAMP_HEADER]
    assert stamp == "1796644800"
    mac = hmac.new(KEY.encode(), f"{stamp}.".encode() + request.body, "sha256")
    expected = f"sha256={mac.hexdigest()}"
    assert hmac.compare_digest(request.headers[SIGNATURE_HEADER], expected)
    assert signature(KEY, stamp, request.body) == expected


def test_secrets_can_be_read_from_files(tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with WebhookReceiver().running() as receiver:
        target(receiver.url, [], bearer_token_file=str(token_file)).send(FAILED)
    assert receiver.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_client_error_is_not_retried() -> None:
    waits: list[float] = []
    with (
        WebhookReceiver(statuses=[404]).running() as receiver,
        pytest.raises(DeliveryError, match="HTTP 404"),
    ):
        target(receiver.url, waits).send(FAILED)
    assert len(receiver.requests) == 1
    assert waits == []


def test_a_redirect_is_not_followed() -> None:
    with (
        WebhookReceiver(statuses=[302]).running() as receiver,
        pytest.raises(DeliveryError, match="redirects are not followed"),
    ):
        target(receiver.url, []).send(FAILED)


def test_an_unreachable_receiver_fails_after_the_attempts_without_showing_secrets() -> None:
    (port,) = free_ports(1)
    waits: list[float] = []
    url = f"http://127.0.0.1:{port}/hook?token={TOKEN}"
    hook = target(url, waits, bearer_token=TOKEN, hmac_secret=KEY, attempts=3)
    with pytest.raises(DeliveryError, match="not delivered after 3 attempts") as raised:
        hook.send(FAILED)
    assert waits == [1.0, 2.0]
    assert TOKEN not in str(raised.value)
    assert KEY not in str(raised.value)
    assert "token=<redacted>" in str(raised.value)


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt() -> None:
    waits: list[float] = []
    with (
        WebhookReceiver(delay=1.0).running() as receiver,
        pytest.raises(DeliveryError, match="Timeout"),
    ):
        target(receiver.url, waits, timeout=0.2, attempts=2).send(FAILED)
    assert waits == [1.0]
