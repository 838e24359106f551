"""Notifications as e-mails over SMTP: one message per notification.

The subject is the configured prefix and the notification's subject
(``[haprotect] RPO breached: lab/shop/pgdata``); the plain-text body is the
notification's text, then its fields one ``name: value`` a line, then when
it happened. ``security`` is ``starttls`` (the default: the connection is
upgraded, and refused if the server cannot), ``ssl`` (TLS from the start)
or ``none``; certificates are checked against the system's CAs or
``ca_file``. A connection that fails, or a 4xx answer (the server is busy),
is retried with backoff; a 5xx answer (a refused login or address) is not.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from haprotect.errors import InputError
from haprotect.service.notify.config import EmailConfig
from haprotect.service.notify.notification import Notification
from haprotect.service.notify.retry import Backoff, Retry, attempt
from haprotect.service.notify.target import DeliveryError, scrubbed


def message(notification: Notification, config: EmailConfig) -> EmailMessage:
    """The e-mail of ``notification`` (see the module docstring)."""
    mail = EmailMessage()
    mail["Subject"] = f"{config.subject_prefix} {notification.subject}".strip()
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.to)
    mail["Date"] = format_datetime(notification.at)
    mail["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2].strip("> ") or None)
    mail["X-Haprotect-Kind"] = notification.kind.value
    width = max((len(name) for name in notification.fields), default=0)
    fields = [f"{name + ':':<{width + 1}} {value}" for name, value in notification.fields.items()]
    sent = f"Sent by haprotect at {notification.at.isoformat()}."
    parts = [notification.text.strip(), "\n".join(fields), sent]
    mail.set_content("\n\n".join(p for p in parts if p) + "\n")
    return mail


class EmailTarget:
    """Sends each notification through the configured SMTP server (see the module docstring)."""

    def __init__(
        self,
        config: EmailConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = config.label()
        self.kinds = config.kinds
        self._config = config
        self._password = config.login_password()
        self._context = None if config.security == "none" else _tls(config)
        self._sleep = sleep
        self._backoff = backoff or Backoff(attempts=config.attempts)

    def send(self, notification: Notification) -> None:
        mail = message(notification, self._config)
        try:
            attempt(lambda: self._deliver(mail), self._backoff, self._sleep)
        except Retry as exc:
            raise DeliveryError(
                f"{self.name}: not sent after {self._backoff.attempts} attempts, the last: {exc}"
            ) from None

    def close(self) -> None:
        """Nothing to release: each notification has its own connection."""

    def _deliver(self, mail: EmailMessage) -> None:
        try:
            with self._connect() as smtp:
                if self._config.username is not None and self._password is not None:
                    smtp.login(self._config.username, self._password)
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            said = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            why = self._safe(f"{exc.smtp_code} {said}")
            if 400 <= exc.smtp_code < 500:
                raise Retry(why) from None
            raise DeliveryError(f"{self.name}: refused: {why}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(
                f"{self.name}: recipients refused: {', '.join(sorted(exc.recipients))}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{self.name}: {self._safe(str(exc))}") from None
        except ssl.SSLError as exc:
            raise DeliveryError(f"{self.name}: TLS failed: {self._safe(str(exc))}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Retry(self._safe(f"{type(exc).__name__}: {exc}")) from None

    def _connect(self) -> smtplib.SMTP:
        config = self._config
        port = config.smtp_port()
        if config.security == "ssl":
            return smtplib.SMTP_SSL(
                config.host, port, timeout=config.timeout, context=self._context
            )
        smtp = smtplib.SMTP(config.host, port, timeout=config.timeout)
        if config.security == "starttls":
            try:
                smtp.starttls(context=self._context)
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _safe(self, text: str) -> str:
        return scrubbed(text, () if self._password is None else (self._password,))


def _tls(config: EmailConfig) -> ssl.SSLContext:
    """The TLS context checking the server's certificate; :class:`InputError` for a bad ca_file."""
    if config.ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(config.ca_file))
    except OSError as exc:  # ssl.SSLError among them
        why = exc.strerror or str(exc)
        raise InputError(f"cannot read ca_file {config.ca_file}: {why}") from None
