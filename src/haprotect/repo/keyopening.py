"""Opening a repository's key: a key file opened with the passphrase, then the index.

Not to be confused with ``repo unlock`` (:meth:`Repository.unlock
<haprotect.repo.repository.Repository.unlock>`), which removes stale locks.

Deriving the key from the passphrase is slow on purpose (scrypt, about
0.2 s). :class:`KeyOpening` does it in a background thread, so that a backup
walks the file system meanwhile; the first use of the key waits for it, and
a wrong passphrase is raised there.

Like :mod:`haprotect.repo.format.keyfile`, this module imports nothing
heavy, so that :func:`haprotect.repo.opening.open_repository` starts the derivation before
the rest of the repository's modules (and ``cryptography``) are loaded: the
modules that open the key file and read the index are imported once the
first derivation is done.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from haprotect.redact import display_url
from haprotect.repo.errors import (
    IntegrityError,
    RepositoryError,
    UnsupportedVersion,
    WrongPassphrase,
)
from haprotect.repo.format.keyfile import KEYS_PREFIX, derive, parse_key_file
from haprotect.storage.base import BlobNotFound, PermanentStorageError

if TYPE_CHECKING:
    from haprotect.repo.format.config import RepoConfig
    from haprotect.repo.format.crypto import MasterKey
    from haprotect.repo.format.indexset import IndexSet
    from haprotect.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class OpenedKey:
    """What opening the key gives: the master key and the loaded index blobs."""

    key: MasterKey
    indexes: IndexSet


def open_key(
    store: BlobStore, config: RepoConfig, mac: str, passphrase: str, *, lenient_index: bool
) -> OpenedKey:
    """The master key from the first key file ``passphrase`` opens, and the index.

    A key file that cannot be read (damaged, of a newer version, of another
    repository, a stray) is skipped: another may open. Only when none does
    is the passphrase wrong, and the message then names the skipped ones.
    A damaged index blob is skipped too: with ``lenient_index`` (check)
    quietly, else with a warning, and the packs it may have named are
    indexed for reading (:mod:`haprotect.repo.format.indexset`).
    """
    skipped: dict[str, RepositoryError | PermanentStorageError] = {}
    tried = 0
    for info in store.list(KEYS_PREFIX):
        try:
            key_file = parse_key_file(store.get(info.key), info.key)
        except BlobNotFound:
            continue
        except (RepositoryError, PermanentStorageError) as exc:
            skipped[info.key] = exc
            continue
        tried += 1
        try:
            secret = derive(passphrase, key_file.salt, key_file.params)
            # loaded after the derivation (see the module's docstring)
            from haprotect.repo.format.indexset import load_index_set
            from haprotect.repo.format.keysealing import open_derived

            key = open_derived(key_file, secret, config.id, info.key)
        except RepositoryError as exc:
            skipped[info.key] = exc
            continue
        except (ValueError, OverflowError) as exc:
            skipped[info.key] = IntegrityError(f"{info.key} is not a valid key file ({exc})")
            continue
        if key is not None:
            config.verify(key, mac, display_url(store.url))
            indexes = load_index_set(store, key, strict=False, recover=not lenient_index)
            return OpenedKey(key, indexes)
    raise _no_key(display_url(store.url), tried, skipped)


def _no_key(
    url: str, tried: int, skipped: dict[str, RepositoryError | PermanentStorageError]
) -> RepositoryError:
    """Wrong passphrase; or no key file could be tried at all."""
    if not skipped:
        return WrongPassphrase(
            f"wrong passphrase for repository {url}",
            hint="check the passphrase, or the key file it belongs to",
        )
    problems = "; ".join(str(skipped[k]) for k in sorted(skipped))
    if not tried:
        newer = any(isinstance(e, UnsupportedVersion) for e in skipped.values())
        kind = UnsupportedVersion if newer else IntegrityError
        return kind(
            f"no key file of repository {url} can be used: {problems}",
            hint="upgrade haprotect"
            if newer
            else "restore the key files from a copy of the repository",
        )
    return WrongPassphrase(
        f"wrong passphrase for repository {url} (skipped {len(skipped)} unusable key "
        f"file{'s' * (len(skipped) != 1)}: {problems})",
        hint="check the passphrase; if it belongs to a skipped key file, restore that file "
        "from a copy of the repository (`haprotect repo check` names it)",
    )


class KeyOpening:
    """A :func:`open_key` running in a background thread; :meth:`result` waits for it."""

    def __init__(
        self,
        store: BlobStore,
        config: RepoConfig,
        mac: str,
        passphrase: str,
        *,
        lenient_index: bool,
    ) -> None:
        self._outcome: OpenedKey | BaseException | None = None

        def run() -> None:
            try:
                self._outcome = open_key(
                    store, config, mac, passphrase, lenient_index=lenient_index
                )
            except BaseException as exc:
                self._outcome = exc

        self._thread = threading.Thread(target=run, name="haprotect-key", daemon=True)
        self._thread.start()

    def result(self) -> OpenedKey:
        """The opened key and index; raises what opening it raised (a wrong passphrase)."""
        self._thread.join()
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome


def start_opening(
    store: BlobStore, passphrase: str, *, lenient_index: bool, background: bool
) -> tuple[RepoConfig, OpenedKey | KeyOpening]:
    """Read the config and open the key (``background``: start opening it in a thread).

    What opening a repository does before it has a :class:`Repository` to put
    the result in; both ways of opening (``Repository.open`` and
    :func:`haprotect.repo.opening.open_repository`) start here.
    """
    from haprotect.repo.format.config import read_config

    config, mac = read_config(store)
    if background:
        return config, KeyOpening(store, config, mac, passphrase, lenient_index=lenient_index)
    return config, open_key(store, config, mac, passphrase, lenient_index=lenient_index)
