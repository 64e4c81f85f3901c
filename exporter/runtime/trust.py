"""Trusted keys and bundle signatures: lock a runtime to bundles a studio approved.

A signed bundle holds ``signature.json``: an ed25519 signature (``cryptography``, never
hand-written crypto) over ``bundle.bundle_digest``, the one sha256 of ``manifest.json`` and of
every file it lists, made by ``hmu export --sign KEY`` or ``hmu sign``. Public keys are text
lines ``hmu-ed25519 <base64 of the 32-byte key> [comment]`` (``hmu keygen`` writes one to
``KEY.pub``); a trusted-keys file holds one or more such lines (``#`` comments allowed).

When any trusted key is configured (an argument, or ``$HMU_TRUSTED_KEYS``: key files joined by
``os.pathsep``), a bundle is refused unless it is signed by one of them over exactly its
current digest: an unsigned bundle, an unknown signer, or a manifest or file changed after
signing each give one ``BundleError`` line. Keys passed as an argument add to the environment's
(a script cannot drop the environment's lock by passing none). With no key configured nothing
here runs and ``cryptography`` is never imported, so the runtime works without the package
(the add-on zip ships it; a vendored runtime elsewhere may not); verifying needs it and says so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hmu_core.errors import BundleError, ConfigError

ENV = "HMU_TRUSTED_KEYS"
SIGNATURE = "signature.json"
SIGNATURE_FORMAT = "hmu-bundle-signature"
SIGNATURE_VERSION = 1
KEY_PREFIX = "hmu-ed25519"
ALGORITHM = "ed25519"


def key_id(raw: bytes) -> str:
    """Short id of a public key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(raw).hexdigest()[:16]


def key_line(raw: bytes, comment: str = "") -> str:
    """The text form of a 32-byte ed25519 public key."""
    text = f"{KEY_PREFIX} {base64.b64encode(raw).decode('ascii')}"
    return f"{text} {comment}".rstrip()


def parse_key_line(line: str, where: str) -> bytes:
    """The 32 raw bytes of one ``hmu-ed25519 BASE64 [comment]`` line.

    Raises:
        ConfigError: naming ``where`` (file and line).
    """
    parts = line.split()
    if len(parts) < 2 or parts[0] != KEY_PREFIX:
        raise ConfigError(f"{where}: not an hmu public key (expected '{KEY_PREFIX} BASE64', as "
                          f"`hmu keygen` writes to KEY.pub)")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{where}: the key is not 32 base64-encoded bytes; copy KEY.pub again")
    return raw


def read_key_file(path: str | Path) -> dict[str, bytes]:
    """Every public key in a trusted-keys file, by key id.

    Raises:
        ConfigError: the file is missing, unreadable, empty or holds a malformed line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"trusted-keys file {path}: cannot read it ({reason}); give a public "
                          f"key file written by `hmu keygen` (KEY.pub)") from None
    keys = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            raw = parse_key_line(line.strip(), f"trusted-keys file {path}:{number}")
            keys[key_id(raw)] = raw
    if not keys:
        raise ConfigError(f"trusted-keys file {path} holds no key; put KEY.pub lines in it")
    return keys


def trusted_keys(files: Iterable[str | Path] | None = None) -> dict[str, bytes]:
    """The keys in ``files`` plus those in the files ``$HMU_TRUSTED_KEYS`` names."""
    if isinstance(files, str | Path):
        files = [files]
    sources = [f for f in os.environ.get(ENV, "").split(os.pathsep) if f.strip()]
    sources += [f for f in (files or []) if str(f).strip()]
    keys: dict[str, bytes] = {}
    for source in sources:
        keys.update(read_key_file(source))
    return keys


def signed_message(digest: str) -> bytes:
    """The bytes a bundle signature signs: a domain label and the bundle digest."""
    return f"{SIGNATURE_FORMAT} {SIGNATURE_VERSION}\n{digest}\n".encode("ascii")


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ConfigError("checking bundle signatures needs the cryptography package: pip "
                          "install 'cryptography>=42' (or configure no trusted keys)") from None
    return ed25519


def _read_signature(root: Path) -> dict[str, Any]:
    path = root / SIGNATURE
    if not path.is_file():
        raise BundleError(f"bundle {root}: not signed, and trusted keys are configured (${ENV} "
                          f"or --trusted-keys); use a bundle signed with `hmu export --sign KEY`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("format") != SIGNATURE_FORMAT \
            or data.get("version") != SIGNATURE_VERSION or data.get("algorithm") != ALGORITHM \
            or not all(isinstance(data.get(k), str) for k in ("key_id", "digest", "signature")):
        raise BundleError(f"bundle {root}: {SIGNATURE} is damaged or not an hmu signature; sign "
                          f"the bundle again")
    return data


def check_signature(root: Path, digest: str, keys: dict[str, bytes]) -> str:
    """The id of the trusted key whose valid signature covers ``digest``.

    Raises:
        BundleError: unsigned, signed by an untrusted key, changed after signing, or a
            signature that does not verify.
        ConfigError: ``cryptography`` is not installed.
    """
    data = _read_signature(root)
    signer = data["key_id"]
    if signer not in keys:
        raise BundleError(f"bundle {root}: signed by key {signer}, which is not a trusted key "
                          f"({', '.join(sorted(keys))}); use an approved bundle")
    if data["digest"] != digest:
        raise BundleError(f"bundle {root}: the manifest or files changed after signing (digest "
                          f"{digest[:16]}..., signed {data['digest'][:16]}...); use the approved "
                          f"bundle, or re-export and sign it again")
    ed25519 = _ed25519()
    from cryptography.exceptions import InvalidSignature

    try:
        signature = base64.b64decode(data["signature"], validate=True)
        ed25519.Ed25519PublicKey.from_public_bytes(keys[signer]).verify(
            signature, signed_message(digest))
    except (InvalidSignature, binascii.Error, ValueError):
        raise BundleError(f"bundle {root}: the signature by key {signer} does not verify: "
                          f"{SIGNATURE} was forged or damaged; use the approved bundle") from None
    return signer
