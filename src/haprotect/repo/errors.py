"""Errors of the repository layer, all one-line messages with a hint.

::

    RepositoryError                     exit 7
    ├── RepositoryNotFound                       no config blob at the location
    ├── RepositoryExists                         init over an existing repository
    ├── WrongPassphrase                          no key file opens with it
    ├── UnsupportedVersion                       written by a newer haprotect
    ├── IntegrityError                           authentication or hash failure, bad blob
    ├── SnapshotNotFound                         no snapshot with that id (prefix)
    ├── RestoreError                             unsafe path, target not usable
    ├── RepositoryLocked                exit 8   another process holds a conflicting lock
    ├── LockLost                                 our lock was removed or went stale
    └── PruneRefused                             prune found damage and deletes nothing
"""

from __future__ import annotations

from haprotect.errors import ExitCode, HaprotectError


class RepositoryError(HaprotectError):
    """Any error of the repository layer (exit 7 unless a subclass says otherwise)."""

    exit_code = ExitCode.REPOSITORY


class RepositoryNotFound(RepositoryError):
    """No config blob at the location."""


class RepositoryExists(RepositoryError):
    """``init`` over an existing repository."""


class WrongPassphrase(RepositoryError):
    """No key file opens with the passphrase."""


class UnsupportedVersion(RepositoryError):
    """The repository, or one of its blobs, was written by a newer haprotect."""


class IntegrityError(RepositoryError):
    """A blob failed authentication or its hash, or is malformed."""


class SnapshotNotFound(RepositoryError):
    """No snapshot has that id (or id prefix)."""


class RestoreError(RepositoryError):
    """A restore refused an unsafe path or cannot use its target."""


class RepositoryLocked(RepositoryError):
    """Exit 8, so that a script can tell "try again later" from damage."""

    exit_code = ExitCode.LOCKED


class LockLost(RepositoryError):
    """Our lock was removed or went stale while we held it."""


class PruneRefused(RepositoryError):
    """Prune found damage and deleted nothing."""
