"""The exception tree of haprotect.

Every error a user can cause derives from :class:`HaprotectError` and carries
a one-line message, an exit code and, where one helps, a hint for recovery.
The CLI prints ``haprotect: error: <message>`` (and the hint) and exits with
the code; it never shows a traceback for these.

::

    HaprotectError                      exit 1
    ├── UsageError                      exit 2   bad arguments, unknown source URL
    ├── InputError                      exit 3   a file or answer that cannot be read
    │   ├── ClusterConfigError                   malformed CIB, main.cf, topology file
    │   └── PolicyError                          policy or rules file fails validation
    ├── ComponentError                  exit 4   a tool or service is missing or failed
    ├── RegistryError                   exit 5   duplicate plug-in, missing extra
    ├── QuiesceError                    exit 9   a tier cannot be held still or resumed
    ├── StorageError (storage/base.py)  exit 6   a blob store failed
    │   ├── BlobNotFound
    │   ├── TransientStorageError                worth retrying
    │   └── PermanentStorageError
    └── RepositoryError (repo/errors.py) exit 7  the repository refuses or is damaged
        ├── RepositoryNotFound, RepositoryExists
        ├── WrongPassphrase, UnsupportedVersion
        ├── IntegrityError                       authentication or hash mismatch
        ├── SnapshotNotFound, RestoreError
        ├── RepositoryLocked            exit 8   held by another process (try later)
        └── LockLost, PruneRefused

A run that finishes but is incomplete exits 10 (PartiallyFailed: some items or
files could not be copied, each named on stderr), one that copied nothing 11
(Failed); see ``model/result.py``.
"""

from __future__ import annotations


class HaprotectError(Exception):
    """Root of every error haprotect reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(HaprotectError):
    exit_code = 2


class InputError(HaprotectError):
    exit_code = 3


class ClusterConfigError(InputError):
    """A cluster configuration (CIB, main.cf, topology file) cannot be understood."""


class PolicyError(InputError):
    """A policy or rules file does not validate."""


class ComponentError(HaprotectError):
    """An external tool or service the operation needs is missing or failed."""

    exit_code = 4


class RegistryError(HaprotectError):
    exit_code = 5


class QuiesceError(HaprotectError):
    """A quiescer could not hold a tier still (or resume it) in time, or is misconfigured."""

    exit_code = 9


def located(path: str, line: int | None, message: str) -> str:
    """Format ``path:line: message``, the shape of every input error."""
    return f"{path}:{line}: {message}" if line is not None else f"{path}: {message}"
