"""Key files: the master key, encrypted under a passphrase.

A repository has one or more key files under ``keys/``, each a JSON document
holding the scrypt parameters and salt, and the master key encrypted with
AES-256-GCM under the key scrypt derives from the passphrase. Opening tries
every key file; a passphrase that opens none is a wrong passphrase. Changing
a passphrase is writing a new key file and deleting the old one; the master
key, and so the data, never changes. The document's layout and the
derivation are in :mod:`haprotect.repo.format.keyfile`.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from haprotect.repo.errors import IntegrityError
from haprotect.repo.format.crypto import NONCE_SIZE, MasterKey
from haprotect.repo.format.keyfile import (
    KEY_FILE_VERSION,
    KEYS_PREFIX,
    KdfParams,
    KeyFile,
    derive,
)

__all__ = ["KEYS_PREFIX", "KdfParams", "new_key_file", "open_derived"]

_AAD = b"haprotect key file v1"


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
    sealed = AESGCM(derive(passphrase, salt, params)).encrypt(nonce, secret, _AAD)
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


def open_derived(
    key_file: KeyFile, secret: bytes, repository_id: str, what: str
) -> MasterKey | None:
    """The master key in ``key_file``, or None when ``secret`` (its derived key) fails."""
    try:
        content_bytes = AESGCM(secret).decrypt(key_file.nonce, key_file.sealed, _AAD)
    except InvalidTag:
        return None
    content: dict[str, Any] = json.loads(content_bytes)
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
