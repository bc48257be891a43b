"""The platform's Ed25519 key: created once, kept in a file readable by its owner only; it signs
the audit log's checkpoints and head, and secrets for other purposes are derived from it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Final
from uuid import uuid4

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from meshkit.errors import MeshkitError

_LOST_KEY_HINT: Final = (
    "restore the key file from a backup; if the key is lost, move the file aside and a new key "
    "is created, but what the old key signed then verifies only with the old public key"
)


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 signing key at ``path`` (PEM, PKCS#8, unencrypted); created if missing.

    A new key file is written whole under a temporary name, readable by its owner only, then
    linked into place: a reader never sees half a key, and of two processes creating the key at
    once, both end up using the one that was linked first.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _create_key(path)
    except OSError as exc:
        raise MeshkitError(
            f"cannot read the audit signing key {path}: {exc.strerror}",
            hint="the key file must be readable by the user meshkit runs as",
        ) from exc
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise MeshkitError(
            f"the audit signing key {path} is corrupt or encrypted: it is not an unencrypted "
            "PEM private key",
            hint=_LOST_KEY_HINT,
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise MeshkitError(
            f"the audit signing key {path} is a {type(key).__name__}, not an Ed25519 key",
            hint=_LOST_KEY_HINT,
        )
    return key


def _create_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    temporary = path.with_name(f".{path.name}.{uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # whatever the umask
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # unlike a rename, fails if the key appeared meanwhile
        except FileExistsError:
            return load_or_create_key(path)
    except OSError as exc:
        raise MeshkitError(
            f"cannot create the audit signing key {path}: {exc.strerror}",
            hint="the key's directory must exist or be creatable, and be writable",
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)
    return key


def derive_secret(key: Ed25519PrivateKey, purpose: bytes) -> str:
    """A secret for another purpose (hex), derived one-way from the platform key: knowing it
    reveals nothing of the key, and each purpose gets its own."""
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return hashlib.sha256(purpose + b"\0" + raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    """The public key as PEM (SubjectPublicKeyInfo), for `openssl` or `load_public_key`."""
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; MeshkitError when it is not one."""
    try:
        key = load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise MeshkitError(
            "the public key is not a PEM public key",
            hint="pass the file `meshkit audit key` wrote",
        ) from err
    if not isinstance(key, Ed25519PublicKey):
        raise MeshkitError(
            "the public key is not an Ed25519 key", hint="pass the file `meshkit audit key` wrote"
        )
    return key


def public_key_id(public_key: Ed25519PublicKey) -> str:
    """A short name for a key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Ed25519Signer:
    """Signs the log's checkpoints and head (an ``AuditSigner`` for the catalog)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._key_id = public_key_id(key.public_key())

    @property
    def key_id(self) -> str:
        return self._key_id

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


def signed_by(public_key: Ed25519PublicKey, signature: str, message: bytes) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
