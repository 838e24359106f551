"""Key files: the master key, encrypted under a passphrase.

A repository has one or more key files under ``keys/``, each a JSON document
holding the scrypt parameters and salt, and the master key encrypted with
AES-256-GCM under the key scrypt derives from the passphrase. Opening tries
every key file; a passphrase that opens none is a wrong passphrase. Changing
a passphrase is writing a new key file and deleting the old one; the master
key, and so the data, never changes.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from haprotect.repo.crypto import KEY_SIZE, NONCE_SIZE, MasterKey
from haprotect.repo.errors import IntegrityError, UnsupportedVersion

KEY_FILE_VERSION = 1
KEYS_PREFIX = "keys/"
_AAD = b"haprotect key file v1"
_MAX_N = 1 << 22
_MAX_R = 32
_MAX_P = 16
_HASHLIB_MAX_MEMORY = 2**31 - 1
# absent from a Python built without OpenSSL's scrypt
_HASHLIB_SCRYPT: Callable[..., bytes] | None = getattr(hashlib, "scrypt", None)


@dataclass(frozen=True, slots=True)
class KdfParams:
    """scrypt cost: ``n`` (CPU and memory), ``r`` (block size), ``p`` (parallelism).

    The default costs about 0.3 s and 64 MiB; tests pass cheaper ones.
    """

    n: int = 1 << 16
    r: int = 8
    p: int = 1


def _derive(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    """scrypt of the passphrase: OpenSSL's through hashlib, which lets other threads run.

    A backup walks the file system while the key is derived
    (:mod:`haprotect.repo.unlock`); ``cryptography``'s scrypt holds the GIL
    throughout. hashlib caps its memory at 2 GiB; costs above that (allowed
    in key files), or a Python or OpenSSL without it, use ``cryptography``'s,
    which gives the same bytes.
    """
    secret = passphrase.encode("utf-8")
    memory = 128 * params.r * (params.n + params.p + 2)
    if memory < _HASHLIB_MAX_MEMORY and _HASHLIB_SCRYPT is not None:
        try:
            return _HASHLIB_SCRYPT(
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
    kdf = Scrypt(salt=salt, length=KEY_SIZE, n=params.n, r=params.r, p=params.p)
    return kdf.derive(secret)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def new_key_file(
    master: MasterKey, repository_id: str, passphrase: str, params: KdfParams
) -> tuple[str, bytes]:
    """Return ``(key, blob)``: where to store a new key file and its bytes."""
    salt = os.urandom(32)
    nonce = os.urandom(NONCE_SIZE)
    secret = json.dumps(
        {
            "repository": repository_id,
            "data_key": _b64(master.data_key),
            "id_key": _b64(master.id_key),
            "chunker_seed": master.chunker_seed,
        }
    ).encode()
    sealed = AESGCM(_derive(passphrase, salt, params)).encrypt(nonce, secret, _AAD)
    document = {
        "version": KEY_FILE_VERSION,
        "created": datetime.now(UTC).isoformat(),
        "host": socket.gethostname(),
        "username": _username(),
        "kdf": {"name": "scrypt", "n": params.n, "r": params.r, "p": params.p, "salt": _b64(salt)},
        "cipher": "aes-256-gcm",
        "nonce": _b64(nonce),
        "data": _b64(sealed),
    }
    key_id = os.urandom(32).hex()
    return KEYS_PREFIX + key_id, json.dumps(document, indent=2).encode() + b"\n"


def open_key_file(blob: bytes, passphrase: str, repository_id: str, what: str) -> MasterKey | None:
    """The master key in ``blob``, or None when ``passphrase`` does not open it."""
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
        salt = base64.b64decode(kdf["salt"])
        nonce = base64.b64decode(document["nonce"])
        sealed = base64.b64decode(document["data"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{what} is not a valid key file ({exc})") from None
    if params.n > _MAX_N or params.r > _MAX_R or params.p > _MAX_P:
        raise IntegrityError(f"{what} asks for unreasonable scrypt costs {params}")
    try:
        secret = AESGCM(_derive(passphrase, salt, params)).decrypt(nonce, sealed, _AAD)
    except InvalidTag:
        return None
    content: dict[str, Any] = json.loads(secret)
    if content["repository"] != repository_id:
        raise IntegrityError(f"{what} belongs to repository {content['repository']}")
    return MasterKey(
        data_key=base64.b64decode(content["data_key"]),
        id_key=base64.b64decode(content["id_key"]),
        chunker_seed=int(content["chunker_seed"]),
    )


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
