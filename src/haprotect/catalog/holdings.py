"""Sets seen in repositories, API tokens (their hashes only), and alerts."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from haprotect.catalog import convert
from haprotect.catalog.base import CatalogBase
from haprotect.catalog.errors import CatalogConflict, CatalogNotFound
from haprotect.catalog.models import AlertRow, SetRow, TokenRow
from haprotect.catalog.policies import sha256_hex
from haprotect.catalog.records import Alert, AlertKind, NewToken, Role, SetRecord, Token

#: Prefix of every token's secret, so that a leaked one is recognised (and scanners can).
TOKEN_PREFIX = "hapt_"
#: ``last_used`` is written at most this often per token (a busy client is not a write each).
LAST_USED_EVERY = timedelta(minutes=1)


class SetStore(CatalogBase):
    """The sets the catalog has seen."""

    def record_set(self, record: SetRecord) -> SetRecord:
        """Record a set seen in a repository (again: its completeness and copies are updated)."""
        with self._transaction() as s:
            row = self._set(s, record.repository, record.set_id)
            if row is None:
                row = SetRow(repository=record.repository, set_id=record.set_id)
                s.add(row)
            row.application, row.taken_at = record.application, record.taken_at
            row.complete, row.copied_to = record.complete, sorted(set(record.copied_to))
            s.flush()
            return convert.set_record(row)

    def add_copy(self, repository: str, set_id: str, target: str) -> SetRecord:
        """Record that a set of ``repository`` was copied to ``target`` and verified there."""
        with self._transaction() as s:
            row = self._set(s, repository, set_id)
            if row is None:
                raise CatalogNotFound(f"no set {set_id} of {repository} in the catalog")
            row.copied_to = sorted({*row.copied_to, target})
            return convert.set_record(row)

    def forget_set(self, repository: str, set_id: str) -> bool:
        """Forget a set retention removed; False when the catalog did not know it."""
        with self._transaction() as s:
            row = self._set(s, repository, set_id)
            if row is not None:
                s.delete(row)
            return row is not None

    def sets(
        self, *, repository: str | None = None, application: str | None = None
    ) -> list[SetRecord]:
        """Sets known, newest first."""
        query = select(SetRow)
        if repository is not None:
            query = query.where(SetRow.repository == repository)
        if application is not None:
            query = query.where(SetRow.application == application)
        with self._transaction() as s:
            rows = s.scalars(query.order_by(SetRow.taken_at.desc(), SetRow.id.desc()))
            return [convert.set_record(row) for row in rows]

    def _set(self, s: Session, repository: str, set_id: str) -> SetRow | None:
        return s.scalar(
            select(SetRow).where(SetRow.repository == repository, SetRow.set_id == set_id)
        )


class TokenStore(CatalogBase):
    """API tokens: a name, a role and the SHA-256 of the secret."""

    def add_token(self, name: str, role: Role) -> NewToken:
        """Make a token; its secret is returned once, only its SHA-256 is stored."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = TokenRow(
            name=name, role=Role(role), sha256=sha256_hex(secret), created_at=self._clock()
        )
        with self._transaction() as s:
            if s.scalar(select(TokenRow.id).where(TokenRow.name == name)) is not None:
                raise CatalogConflict(f"a token named {name!r} exists", hint="choose another name")
            s.add(row)
            s.flush()
            return NewToken(convert.token(row), secret)

    def verify_token(self, secret: str) -> Token | None:
        """The token whose secret this is, unless unknown or revoked (compared in constant time)."""
        digest = sha256_hex(secret)
        with self._transaction() as s:
            row = s.scalar(select(TokenRow).where(TokenRow.sha256 == digest))
            if row is None or not hmac.compare_digest(row.sha256, digest):
                return None
            if row.revoked_at is not None:
                return None
            now = self._clock()
            if row.last_used is None or now - row.last_used >= LAST_USED_EVERY:
                row.last_used = now
            return convert.token(row)

    def revoke_token(self, name: str) -> Token:
        """Revoke a token: it is refused from now on (revoking twice changes nothing)."""
        with self._transaction() as s:
            row = s.scalar(select(TokenRow).where(TokenRow.name == name))
            if row is None:
                raise CatalogNotFound(f"no token named {name!r}", hint="haprotect token list")
            if row.revoked_at is None:
                row.revoked_at = self._clock()
            return convert.token(row)

    def tokens(self) -> list[Token]:
        with self._transaction() as s:
            return [
                convert.token(row) for row in s.scalars(select(TokenRow).order_by(TokenRow.name))
            ]


class AlertStore(CatalogBase):
    """Alerts raised by the service, until acknowledged."""

    def raise_alert(
        self, kind: AlertKind, subject: str, text: str, *, at: datetime | None = None
    ) -> Alert:
        row = AlertRow(kind=AlertKind(kind), subject=subject, text=text, at=at or self._clock())
        with self._transaction() as s:
            s.add(row)
            s.flush()
            return convert.alert(row)

    def alerts(self, *, open_only: bool = False, limit: int = 100) -> list[Alert]:
        """Alerts, newest first (only those not acknowledged)."""
        query = select(AlertRow)
        if open_only:
            query = query.where(AlertRow.acknowledged.is_(False))
        with self._transaction() as s:
            rows = s.scalars(query.order_by(AlertRow.at.desc(), AlertRow.id.desc()).limit(limit))
            return [convert.alert(row) for row in rows]

    def acknowledge_alert(self, alert_id: int, *, by: str) -> Alert:
        with self._transaction() as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise CatalogNotFound(f"no alert {alert_id} in the catalog")
            if not row.acknowledged:
                row.acknowledged, row.acknowledged_by = True, by
            return convert.alert(row)
