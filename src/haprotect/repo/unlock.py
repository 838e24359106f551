"""Unlocking a repository: a key file opened with the passphrase, then the index.

Deriving the key from the passphrase is slow on purpose (scrypt, about
0.2 s). :class:`Unlocking` does it in a background thread, so that a backup
walks the file system meanwhile; the first use of the key waits for it, and
a wrong passphrase is raised there.

Like :mod:`haprotect.repo.kdf`, this module imports nothing heavy, so that
:func:`haprotect.repo.opening.open_repository` starts the derivation before
the rest of the repository's modules (and ``cryptography``) are loaded: the
modules that open the key file and read the index are imported once the
first derivation is done.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from haprotect.repo.errors import WrongPassphrase
from haprotect.repo.kdf import KEYS_PREFIX, derive, parse_key_file

if TYPE_CHECKING:
    from haprotect.repo.config import RepoConfig
    from haprotect.repo.crypto import MasterKey
    from haprotect.repo.indexset import IndexSet
    from haprotect.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class Unlocked:
    key: MasterKey
    indexes: IndexSet


def unlock(
    store: BlobStore, config: RepoConfig, mac: str, passphrase: str, *, strict_index: bool
) -> Unlocked:
    """The master key from the first key file ``passphrase`` opens, and the index.

    A damaged index blob raises, unless not ``strict_index``: then it is
    recorded in the index set's ``damaged``.
    """
    for info in store.list(KEYS_PREFIX):
        key_file = parse_key_file(store.get(info.key), info.key)
        secret = derive(passphrase, key_file.salt, key_file.params)
        # loaded after the derivation (see the module's docstring)
        from haprotect.repo.indexset import load_index_set
        from haprotect.repo.keys import open_derived

        key = open_derived(key_file, secret, config.id, info.key)
        if key is not None:
            config.verify(key, mac, store.url)
            return Unlocked(key, load_index_set(store, key, strict=strict_index))
    raise WrongPassphrase(
        f"wrong passphrase for repository {store.url}",
        hint="check the passphrase, or the key file it belongs to",
    )


class Unlocking:
    """:func:`unlock` running in a background thread; :meth:`result` waits for it."""

    def __init__(
        self,
        store: BlobStore,
        config: RepoConfig,
        mac: str,
        passphrase: str,
        *,
        strict_index: bool,
    ) -> None:
        self._outcome: Unlocked | BaseException | None = None

        def run() -> None:
            try:
                self._outcome = unlock(store, config, mac, passphrase, strict_index=strict_index)
            except BaseException as exc:
                self._outcome = exc

        self._thread = threading.Thread(target=run, name="haprotect-unlock", daemon=True)
        self._thread.start()

    def result(self) -> Unlocked:
        """The unlocked key and index; raises what unlocking raised (a wrong passphrase)."""
        self._thread.join()
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome
