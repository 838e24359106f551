"""Opening a repository: the key derivation starts before the heavy modules are imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from haprotect.repo import KdfParams, Repository, open_repository
from haprotect.repo.errors import IntegrityError, RepositoryNotFound, WrongPassphrase
from haprotect.storage.local import LocalStore
from haprotect.storage.memory import MemoryStore

SRC = Path(__file__).resolve().parents[2] / "src"


def _fresh_interpreter(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        check=True,
    )
    return done.stdout


def test_what_opening_imports_before_the_derivation_starts() -> None:
    """Neither cryptography, the compressor, BLAKE3 nor the Repository class itself."""
    out = _fresh_interpreter(
        """
        import sys
        from haprotect.repo import open_repository
        from haprotect.storage.local import LocalStore
        heavy = ("cryptography", "zstandard", "blake3", "haprotect.repo.repository")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy))
        """
    )
    assert out.strip() == "[]"


def test_the_derivation_starts_before_the_repository_modules_load(tmp_path: Path) -> None:
    """The import of the Repository class waits here until the derivation has begun."""
    Repository.init(LocalStore(tmp_path / "repo"), "pw", kdf=KdfParams(n=1 << 10))
    out = _fresh_interpreter(
        f"""
        import sys, threading
        from haprotect.repo import open_repository
        from haprotect.repo import keyopening
        from haprotect.storage.local import LocalStore
        started, seen = threading.Event(), []
        derive = keyopening.derive
        def noted(*args):
            started.set()
            return derive(*args)
        keyopening.derive = noted
        class Gate:
            def find_spec(self, name, path=None, target=None):
                if name == "haprotect.repo.repository":
                    seen.append(started.wait(5))
        sys.meta_path.insert(0, Gate())
        repo = open_repository(LocalStore({str(tmp_path / "repo")!r}), "pw", background=True)
        print(seen, len(repo.snapshots()))
        """
    )
    assert out.split() == ["[True]", "0"]


def test_open_repository_raises_what_open_raises(tmp_path: Path) -> None:
    store = MemoryStore("memory://opening/")
    with pytest.raises(RepositoryNotFound, match="no haprotect repository at memory://opening"):
        open_repository(store, "pw")
    Repository.init(store, "pw", kdf=KdfParams(n=1 << 10))
    with pytest.raises(WrongPassphrase):
        open_repository(store, "other")
    opened = open_repository(store, "other", background=True)
    with pytest.raises(WrongPassphrase):
        opened.snapshots()
    (name,) = [info.key for info in store.list("keys/")]
    store.put(name, b"{not json")
    with pytest.raises(IntegrityError, match=f"{name} is not a valid key file"):
        open_repository(store, "pw")
