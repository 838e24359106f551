"""Where notifications go: the ``notifications`` section of the service's config.

::

    notifications:
      targets:
        - type: webhook
          url: https://alerts.example.com/haprotect
          bearer_token_file: /etc/haprotect/webhook.token   # or hmac_secret_file
        - type: email
          host: smtp.example.com
          security: starttls          # none | starttls | ssl
          username: haprotect
          password_file: /etc/haprotect/smtp.password
          sender: haprotect@example.com
          to: [backup-team@example.com]
          kinds: [failure, rpo_breach]   # all kinds when left out

Secrets are given in a file (``*_file``, read when the service starts) or
inline; never both. They are held as :class:`pydantic.SecretStr`, so a
printed or logged config shows ``**********``, and validation errors do not
quote the input (a URL's password, a token). Unknown keys are errors, so a
misspelt option is named rather than ignored.
"""

from __future__ import annotations

from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from haprotect.errors import InputError
from haprotect.redact import display_url
from haprotect.service.notify.notification import Kind

_ALL_KINDS = frozenset(Kind)


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: Shown in logs and in the record of failed deliveries; made from the target when left out.
    name: str | None = None
    #: The kinds of notification this target receives.
    kinds: frozenset[Kind] = _ALL_KINDS
    #: Seconds one attempt may take (connect, send, answer).
    timeout: float = Field(default=10.0, gt=0, le=300)
    #: Attempts per notification, retried with backoff on failures worth retrying.
    attempts: int = Field(default=4, ge=1, le=10)


class WebhookConfig(_Target):
    """A URL that receives each notification as a JSON POST."""

    type: Literal["webhook"]
    url: str
    #: Sent as ``Authorization: Bearer <token>``.
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    #: Signs each body: ``X-Haprotect-Signature: sha256=<HMAC-SHA256 of "<timestamp>.<body>">``.
    hmac_secret: SecretStr | None = None
    hmac_secret_file: Path | None = None
    #: More headers to send (e.g. a receiver's own secret header).
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {display_url(url)!r}")
        return url

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> WebhookConfig:
        _one_of(self.bearer_token, self.bearer_token_file, "bearer_token")
        _one_of(self.hmac_secret, self.hmac_secret_file, "hmac_secret")
        return self

    def label(self) -> str:
        return self.name or f"webhook {display_url(self.url)}"

    def bearer(self) -> str | None:
        """The bearer token, read from its file if it has one (InputError if unreadable)."""
        return _secret(self.bearer_token, self.bearer_token_file, "bearer_token_file")

    def signing_key(self) -> str | None:
        """The HMAC secret, read from its file if it has one."""
        return _secret(self.hmac_secret, self.hmac_secret_file, "hmac_secret_file")


class EmailConfig(_Target):
    """An SMTP server that sends each notification as one e-mail to ``to``."""

    type: Literal["email"]
    host: str
    #: 25 with ``none``, 587 with ``starttls``, 465 with ``ssl`` when left out.
    port: int | None = Field(default=None, ge=1, le=65535)
    #: ``starttls`` upgrades a plain connection (refused if the server cannot); ``ssl`` is TLS
    #: from the start; ``none`` sends in clear (a local relay).
    security: Literal["none", "starttls", "ssl"] = "starttls"
    #: CA certificates to trust instead of the system's (a private relay's certificate).
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    #: Put before each notification's subject.
    subject_prefix: str = "[haprotect]"

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _recipient_addresses(cls, values: list[str]) -> list[str]:
        return [_address(v) for v in values]

    @model_validator(mode="after")
    def _login(self) -> EmailConfig:
        _one_of(self.password, self.password_file, "password")
        has_password = self.password is not None or self.password_file is not None
        if has_password != (self.username is not None):
            raise ValueError("username and password (or password_file) go together")
        if has_password and self.security == "none":
            raise ValueError(
                "a login needs security: starttls or ssl (the password would be sent in clear)"
            )
        return self

    def label(self) -> str:
        return self.name or f"email {', '.join(self.to)} via {self.host}"

    def smtp_port(self) -> int:
        return self.port or {"none": 25, "starttls": 587, "ssl": 465}[self.security]

    def login_password(self) -> str | None:
        """The password, read from its file if it has one."""
        return _secret(self.password, self.password_file, "password_file")


TargetConfig = Annotated[WebhookConfig | EmailConfig, Field(discriminator="type")]


class NotificationsConfig(BaseModel):
    """The targets every notification goes to, and how many may wait to be sent."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    targets: list[TargetConfig] = Field(default_factory=list)
    #: Notifications waiting beyond this are dropped (and logged): a dead target cannot make
    #: the service grow without bound.
    queue_size: int = Field(default=100, ge=1, le=100_000)


def _one_of(inline: SecretStr | None, path: Path | None, name: str) -> None:
    if inline is not None and path is not None:
        raise ValueError(f"{name} and {name}_file are exclusive: give one")


def _address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(f"not an e-mail address: {value!r}")
    return value


def _secret(inline: SecretStr | None, path: Path | None, option: str) -> str | None:
    if inline is not None:
        return inline.get_secret_value()
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InputError(
            f"cannot read {option} {path}: {why}",
            hint="the file holds the secret alone, readable by the service's user",
        ) from None
    if not text:
        raise InputError(f"{option} {path} is empty")
    return text
