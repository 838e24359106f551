"""Policies and their versions: apply, review (approve, reject), and what runs."""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from haprotect.catalog import convert
from haprotect.catalog.base import CatalogBase
from haprotect.catalog.errors import CatalogConflict, CatalogNotFound
from haprotect.catalog.models import PolicyRow, PolicyVersionRow
from haprotect.catalog.records import Applied, PolicyVersion, VersionState


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyStore(CatalogBase):
    """The policy versions of the catalog."""

    def apply_policy(self, name: str, text: str, *, by: str, auto_approve: bool = False) -> Applied:
        """Store ``text`` as the next version of policy ``name``.

        The same text as the newest version stores nothing (``created`` is
        False). A new version is pending, or approved at once with
        ``auto_approve`` (superseding the approved one).
        """
        digest = sha256_hex(text)
        with self._transaction() as s:
            policy = s.scalar(select(PolicyRow).where(PolicyRow.name == name).with_for_update())
            if policy is None:
                policy = PolicyRow(name=name)
                s.add(policy)
                s.flush()
            latest = self._latest(s, policy.id)
            if latest is not None and latest.sha256 == digest:
                return Applied(convert.version(latest, name), created=False)
            now = self._clock()
            row = PolicyVersionRow(
                policy_id=policy.id,
                number=(latest.number + 1) if latest is not None else 1,
                text=text,
                sha256=digest,
                state=VersionState.PENDING,
                created_at=now,
                created_by=by,
            )
            s.add(row)
            s.flush()
            if auto_approve:
                self._decide(
                    s, row, VersionState.APPROVED, by, "auto_approve in the policy's rules"
                )
            return Applied(convert.version(row, name), created=True)

    def approve(
        self, name: str, number: int | None = None, *, by: str, comment: str | None = None
    ) -> PolicyVersion:
        """Approve a pending version (the newest pending one when ``number`` is None).

        The version approved before it, and pending versions older than it,
        become superseded: only the approved version runs.
        """
        return self._review(name, number, VersionState.APPROVED, by, comment)

    def reject(
        self, name: str, number: int | None = None, *, by: str, comment: str | None = None
    ) -> PolicyVersion:
        """Reject a pending version (the newest pending one when ``number`` is None)."""
        return self._review(name, number, VersionState.REJECTED, by, comment)

    def _review(
        self,
        name: str,
        number: int | None,
        state: VersionState,
        by: str,
        comment: str | None,
    ) -> PolicyVersion:
        with self._transaction() as s:
            policy = self._policy(s, name, lock=True)
            query = select(PolicyVersionRow).where(PolicyVersionRow.policy_id == policy.id)
            if number is None:
                query = query.where(PolicyVersionRow.state == VersionState.PENDING)
                row = s.scalar(query.order_by(PolicyVersionRow.number.desc()).limit(1))
                if row is None:
                    raise CatalogConflict(
                        f"policy {name!r} has no pending version",
                        hint=f"haprotect policy versions {name}",
                    )
            else:
                row = s.scalar(query.where(PolicyVersionRow.number == number))
                if row is None:
                    raise CatalogNotFound(
                        f"policy {name!r} has no version {number}",
                        hint=f"haprotect policy versions {name}",
                    )
                if row.state != VersionState.PENDING:
                    raise CatalogConflict(
                        f"version {number} of policy {name!r} is {row.state}, not pending",
                        hint="only a pending version can be approved or rejected",
                    )
            self._decide(s, row, state, by, comment)
            return convert.version(row, name)

    def _decide(
        self,
        s: Session,
        row: PolicyVersionRow,
        state: VersionState,
        by: str,
        comment: str | None,
    ) -> None:
        now = self._clock()
        if state is VersionState.APPROVED:
            s.execute(
                update(PolicyVersionRow)
                .where(
                    PolicyVersionRow.policy_id == row.policy_id,
                    PolicyVersionRow.id != row.id,
                    (PolicyVersionRow.state == VersionState.APPROVED)
                    | (
                        (PolicyVersionRow.state == VersionState.PENDING)
                        & (PolicyVersionRow.number < row.number)
                    ),
                )
                .values(state=VersionState.SUPERSEDED)
            )
        row.state = state
        row.decided_at = now
        row.decided_by = by
        row.comment = comment

    def policies(self) -> list[str]:
        """The names of every policy, sorted."""
        with self._transaction() as s:
            return list(s.scalars(select(PolicyRow.name).order_by(PolicyRow.name)))

    def versions(self, name: str | None = None) -> list[PolicyVersion]:
        """Every version (of one policy), by policy name then number."""
        with self._transaction() as s:
            query = select(PolicyVersionRow, PolicyRow.name).join(PolicyRow)
            if name is not None:
                query = query.where(PolicyRow.id == self._policy(s, name).id)
            query = query.order_by(PolicyRow.name, PolicyVersionRow.number)
            return [convert.version(row, policy) for row, policy in s.execute(query).all()]

    def version(self, name: str, number: int | None = None) -> PolicyVersion:
        """One version of a policy; the newest when ``number`` is None."""
        with self._transaction() as s:
            policy = self._policy(s, name)
            if number is None:
                row = self._latest(s, policy.id)
            else:
                row = s.scalar(
                    select(PolicyVersionRow).where(
                        PolicyVersionRow.policy_id == policy.id, PolicyVersionRow.number == number
                    )
                )
            if row is None:
                raise CatalogNotFound(
                    f"policy {name!r} has no version {number}",
                    hint=f"haprotect policy versions {name}",
                )
            return convert.version(row, name)

    def approved(self, name: str) -> PolicyVersion | None:
        """The version of ``name`` that runs, if one is approved."""
        with self._transaction() as s:
            row = s.scalar(
                select(PolicyVersionRow).where(
                    PolicyVersionRow.policy_id == self._policy(s, name).id,
                    PolicyVersionRow.state == VersionState.APPROVED,
                )
            )
            return None if row is None else convert.version(row, name)

    def approved_versions(self) -> list[PolicyVersion]:
        """The approved version of each policy that has one, by policy name."""
        with self._transaction() as s:
            query = (
                select(PolicyVersionRow, PolicyRow.name)
                .join(PolicyRow)
                .where(PolicyVersionRow.state == VersionState.APPROVED)
                .order_by(PolicyRow.name)
            )
            return [convert.version(row, policy) for row, policy in s.execute(query).all()]

    def approved_ids(self) -> dict[str, int]:
        """The id of each policy's approved version, by policy name: a cheap look for changes."""
        with self._transaction() as s:
            query = (
                select(PolicyRow.name, PolicyVersionRow.id)
                .join(PolicyRow)
                .where(PolicyVersionRow.state == VersionState.APPROVED)
            )
            return {name: version_id for name, version_id in s.execute(query).all()}

    def pending(self, name: str) -> PolicyVersion | None:
        """The newest pending version of ``name``, if any."""
        with self._transaction() as s:
            row = s.scalar(
                select(PolicyVersionRow)
                .where(
                    PolicyVersionRow.policy_id == self._policy(s, name).id,
                    PolicyVersionRow.state == VersionState.PENDING,
                )
                .order_by(PolicyVersionRow.number.desc())
                .limit(1)
            )
            return None if row is None else convert.version(row, name)

    def _policy(self, s: Session, name: str, *, lock: bool = False) -> PolicyRow:
        query = select(PolicyRow).where(PolicyRow.name == name)
        row = s.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise CatalogNotFound(
                f"no policy {name!r} in the catalog", hint="haprotect policy versions"
            )
        return row

    def _latest(self, s: Session, policy_id: int) -> PolicyVersionRow | None:
        return s.scalar(
            select(PolicyVersionRow)
            .where(PolicyVersionRow.policy_id == policy_id)
            .order_by(PolicyVersionRow.number.desc())
            .limit(1)
        )
