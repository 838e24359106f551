"""Key files as documents, and the passphrase's key derivation (scrypt).

This module imports nothing heavy (no ``cryptography``, no compression):
opening a repository starts deriving the key before the rest of the
repository's modules are loaded (:mod:`haprotect.repo.opening`), and the
derivation needs only a key file's parameters and ``hashlib``. Sealing and
opening the master key inside a key file is :mod:`haprotect.repo.format.keysealing`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from haprotect.repo.errors import IntegrityError, UnsupportedVersion

KEY_FILE_VERSION = 1
KEYS_PREFIX = "keys/"
KEY_SIZE = 32
_MAX_N = 1 << 22
_MAX_R = 32
_MAX_P = 16
_HASHLIB_MAX_MEMORY = 2**31 - 1
# absent from a Python built without OpenSSL's scrypt
_HASHLIB_SCRYPT: Callable[..., bytes] | None = getattr(hashlib, "scrypt", None)


@dataclass(frozen=True, slots=True)
class KdfParams:
    """scrypt cost: ``n`` (CPU and memory), ``r`` (block size), ``p`` (parallelism).

    The default costs about 0.2 s and 64 MiB; tests pass cheaper ones.
    """

    n: int = 1 << 16
    r: int = 8
    p: int = 1


@dataclass(frozen=True, slots=True)
class KeyFile:
    """A parsed key file: how to derive its key, and the master key sealed under it."""

    params: KdfParams
    salt: bytes
    nonce: bytes
    sealed: bytes


def derive(
    passphrase: str,
    salt: bytes,
    params: KdfParams,
    *,
    hashlib_scrypt: Callable[..., bytes] | None = _HASHLIB_SCRYPT,
) -> bytes:
    """scrypt of the passphrase: OpenSSL's through hashlib, which lets other threads run.

    A backup walks the file system while the key is derived
    (:mod:`haprotect.repo.keyopening`); ``cryptography``'s scrypt holds the GIL
    throughout. hashlib caps its memory at 2 GiB; costs above that (allowed
    in key files), or a Python or OpenSSL without it, use ``cryptography``'s,
    which gives the same bytes (imported only then). ``hashlib_scrypt``:
    hashlib's, None where there is none.
    """
    secret = passphrase.encode("utf-8")
    memory = 128 * params.r * (params.n + params.p + 2)
    if memory < _HASHLIB_MAX_MEMORY and hashlib_scrypt is not None:
        try:
            return hashlib_scrypt(
                secret,
                salt=salt,
                n=params.n,
                r=params.r,
                p=params.p,
                maxmem=_HASHLIB_MAX_MEMORY,
                dklen=KEY_SIZE,
            )
        except ValueError:
            pass  # refused by this OpenSSL (a FIPS mode): cryptography's below
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=KEY_SIZE, n=params.n, r=params.r, p=params.p).derive(secret)


def parse_key_file(blob: bytes, what: str) -> KeyFile:
    """The parameters and sealed master key of key file ``what``; raise if it is not one."""
    try:
        document: dict[str, Any] = json.loads(blob)
        version = int(document["version"])
        if version > KEY_FILE_VERSION:
            raise UnsupportedVersion(
                f"{what} uses key file version {version}; this haprotect reads up to "
                f"{KEY_FILE_VERSION}",
                hint="upgrade haprotect",
            )
        kdf = document["kdf"]
        if kdf["name"] != "scrypt":
            raise IntegrityError(f"{what}: unknown key derivation {kdf['name']!r}")
        params = KdfParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
        key_file = KeyFile(
            params,
            base64.b64decode(kdf["salt"]),
            base64.b64decode(document["nonce"]),
            base64.b64decode(document["data"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{what} is not a valid key file ({exc})") from None
    if params.n > _MAX_N or params.r > _MAX_R or params.p > _MAX_P:
        raise IntegrityError(f"{what} asks for unreasonable scrypt costs {params}")
    return key_file
