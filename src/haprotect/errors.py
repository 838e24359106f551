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
    ├── NothingCopied                   exit 11  no path given to back up exists
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

Exit codes: this is the one table, and every command's ``--help`` ends with
the codes it can exit with, in these words (``Exit status: 0 success, 2 bad
usage, ...``; a test holds each command to them):

====  ==================  =====================================================
code  words in --help     meaning
====  ==================  =====================================================
0     success             done (or a command's "yes": valid, no differences)
1     (the command's)     a command's "no": diff (the policies differ), drift
                          (not covered), lab load/verify (acknowledged data
                          missing), restore (not confirmed); else a bug
                          (shown with a traceback)
2     bad usage           bad arguments or options, an unknown source URL
3     unreadable input    a file or answer that cannot be read or fails
                          validation (policy, rules, topology, passphrase file)
4     component failed    a tool or service the command needs is missing or
                          failed
5     plug-in missing     a plug-in or an optional extra is missing or clashes
6     storage failed      the blob store failed (full disk, no permission, S3)
7     repository refused  wrong passphrase, no repository, damage, a restore
                          target that cannot be used, or ``check`` found errors
8     locked              another process holds a conflicting lock: try later
9     quiesce failed      a tier could not be held still or resumed
10    partially failed    a run ended PartiallyFailed: some items or files were
                          not copied (each is named on stderr), the rest was
11    failed              a run ended Failed: nothing was copied
====  ==================  =====================================================

Codes 10 and 11 are how runs end (``model/result.py``); the others are the
errors above.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit statuses of every command (the table of the module's docstring)."""

    SUCCESS = 0
    NO = 1
    USAGE = 2
    INPUT = 3
    COMPONENT = 4
    REGISTRY = 5
    STORAGE = 6
    REPOSITORY = 7
    LOCKED = 8
    QUIESCE = 9
    PARTIALLY_FAILED = 10
    FAILED = 11

    @property
    def words(self) -> str:
        """How a command's ``--help`` names this code after ``Exit status:``."""
        return _WORDS[self]


_WORDS = {
    ExitCode.SUCCESS: "success",
    ExitCode.NO: "no",
    ExitCode.USAGE: "bad usage",
    ExitCode.INPUT: "unreadable input",
    ExitCode.COMPONENT: "component failed",
    ExitCode.REGISTRY: "plug-in missing",
    ExitCode.STORAGE: "storage failed",
    ExitCode.REPOSITORY: "repository refused",
    ExitCode.LOCKED: "locked",
    ExitCode.QUIESCE: "quiesce failed",
    ExitCode.PARTIALLY_FAILED: "partially failed",
    ExitCode.FAILED: "failed",
}


class HaprotectError(Exception):
    """Root of every error haprotect reports to a user."""

    exit_code: int = ExitCode.NO

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(HaprotectError):
    """Bad arguments: an unknown name or id, an ambiguous one, a request that cannot be met."""

    exit_code = ExitCode.USAGE


class InputError(HaprotectError):
    """A file or answer that cannot be read or understood."""

    exit_code = ExitCode.INPUT


class ClusterConfigError(InputError):
    """A cluster configuration (CIB, main.cf, topology file) cannot be understood."""


class PolicyError(InputError):
    """A policy or rules file does not validate."""


class ComponentError(HaprotectError):
    """An external tool or service the operation needs is missing or failed."""

    exit_code = ExitCode.COMPONENT


class RegistryError(HaprotectError):
    """A plug-in that is unknown, registered twice, or cannot be loaded (a missing extra, say)."""

    exit_code = ExitCode.REGISTRY


class QuiesceError(HaprotectError):
    """A quiescer could not hold a tier still (or resume it) in time, or is misconfigured."""

    exit_code = ExitCode.QUIESCE


class NothingCopied(HaprotectError):
    """A backup none of whose paths exists: it ends Failed and writes no snapshot."""

    exit_code = ExitCode.FAILED


def located(path: str, line: int | None, message: str) -> str:
    """Format ``path:line: message``, the shape of every input error."""
    return f"{path}:{line}: {message}" if line is not None else f"{path}: {message}"
