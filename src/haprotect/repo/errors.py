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
    exit_code = ExitCode.REPOSITORY


class RepositoryNotFound(RepositoryError):
    pass


class RepositoryExists(RepositoryError):
    pass


class WrongPassphrase(RepositoryError):
    pass


class UnsupportedVersion(RepositoryError):
    pass


class IntegrityError(RepositoryError):
    pass


class SnapshotNotFound(RepositoryError):
    pass


class RestoreError(RepositoryError):
    pass


class RepositoryLocked(RepositoryError):
    """Exit 8, so that a script can tell "try again later" from damage."""

    exit_code = ExitCode.LOCKED


class LockLost(RepositoryError):
    pass


class PruneRefused(RepositoryError):
    pass
