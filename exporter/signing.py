"""Signing bundles: ``hmu keygen`` key pairs and ``signature.json`` over a bundle's digest.

The private key is a PKCS#8 PEM file (mode 0600), the public key one ``hmu-ed25519`` line in
``KEY.pub`` (``exporter.runtime.trust`` reads and verifies; this side signs). ed25519 comes from
the ``cryptography`` package. Signing reads the bundle fully (every hash and field checked), so
only a valid bundle gets a signature, and writes the signature file atomically.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

from exporter.runtime import trust
from exporter.runtime.bundle import read_bundle_unsigned
from hmu_core.atomic import write_json
from hmu_core.errors import ConfigError


def _crypto() -> tuple[Any, Any]:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ConfigError("signing needs the cryptography package: pip install "
                          "'cryptography>=42'") from None
    return serialization, ed25519


def generate_keypair(out: str | Path, comment: str = "") -> tuple[Path, Path, str]:
    """Write a new ed25519 private key to ``out`` (0600) and its public line to ``out.pub``.

    Returns:
        ``(private path, public path, key id)``.
    A missing folder is created (0700: it holds a secret), as every ``--out`` of hmu is.

    Raises:
        ConfigError: either file exists (a key is never overwritten), or the folder cannot be
            made.
    """
    serialization, ed25519 = _crypto()
    private = Path(out)
    public = private.with_name(private.name + ".pub")
    for path in (private, public):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"{path} exists; keys are never overwritten: choose another --out")
    if not private.parent.is_dir():
        try:
            private.parent.mkdir(mode=0o700, parents=True)
        except OSError as exc:
            raise ConfigError(f"cannot make the key folder {private.parent}: "
                              f"{exc.strerror or exc}") from None
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode("ascii")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    _create_private(private, pem.encode("ascii"))
    try:
        _create_private(public, (trust.key_line(raw, comment) + "\n").encode("ascii"))
    except BaseException:
        private.unlink()  # never leave half a key pair
        raise
    os.chmod(public, 0o644)
    return private, public, trust.key_id(raw)


def _create_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path``, mode 0600, atomically and never over an existing
    file (``atomic_open`` replaces and widens permissions; a key needs neither).

    Raises:
        ConfigError: ``path`` exists, or the folder is not writable (naming the path).
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # fails if path appeared meanwhile: no overwrite, no race
    except FileExistsError:
        raise ConfigError(f"{path} exists; keys are never overwritten: choose another --out"
                          ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write the key {path} ({exc.strerror})") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)


def load_private_key(path: str | Path) -> Any:
    """The ``Ed25519PrivateKey`` in a PEM file written by :func:`generate_keypair`.

    Raises:
        ConfigError: missing, unreadable, encrypted, or not an ed25519 private key.
    """
    serialization, ed25519 = _crypto()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"signing key {path}: cannot read it ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError) as exc:  # TypeError: an encrypted key
        raise ConfigError(f"signing key {path} is not an unencrypted PEM private key "
                          f"({str(exc).splitlines()[0][:120]}); make one with `hmu keygen`"
                          ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} is a {type(key).__name__}, not ed25519; make "
                          f"one with `hmu keygen`")
    return key


def sign_bundle(bundle: str | Path, key: str | Path | Any) -> str:
    """Sign a bundle directory with a private key (a key file, or one from
    :func:`load_private_key`); returns the key id.

    Raises:
        BundleError: the bundle does not read cleanly (it is never signed then).
        ConfigError: a bad key file, or a bundle directory that is not writable.
    """
    serialization, ed25519 = _crypto()
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        key = load_private_key(key)
    digest = read_bundle_unsigned(bundle).digest
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    target = Path(bundle) / trust.SIGNATURE
    try:
        write_json(target, {
            "format": trust.SIGNATURE_FORMAT, "version": trust.SIGNATURE_VERSION,
            "algorithm": trust.ALGORITHM, "key_id": trust.key_id(raw),
            "public_key": trust.key_line(raw), "digest": digest,
            "signature": base64.b64encode(key.sign(trust.signed_message(digest))).decode("ascii"),
        })
    except OSError as exc:
        raise ConfigError(f"cannot write {target} ({exc.strerror}); sign a writable copy of the "
                          f"bundle") from None
    return trust.key_id(raw)
