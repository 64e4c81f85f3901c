"""``hmu keygen`` and ``hmu sign``: ed25519 keys that lock runtimes to approved bundles.

A studio makes one key pair, signs the bundles it approved (``hmu export --sign KEY`` or
``hmu sign --bundle DIR --key KEY``) and hands ``KEY.pub`` to its animators: the runtime, ``hmu
clips`` and the Blender add-on then refuse any bundle not signed by a trusted key, or changed
after signing. Work is in ``exporter.signing``; imports happen inside ``run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

_KEYGEN_EPILOG = """examples:
  hmu keygen --out keys/studio
  hmu export --model runs/set --out runs/bundles/safe --sign keys/studio
  HMU_TRUSTED_KEYS=keys/studio.pub hmu clips prompts.txt --bundle runs/bundles/safe --out lib/

Writes KEY (the private key, PEM, readable by you only: keep it secret) and KEY.pub (one line
'hmu-ed25519 BASE64 COMMENT': give it to whoever runs bundles). Existing files are never
overwritten. Trust a key with --trusted-keys KEY.pub (hmu clips), the add-on preference
Trusted Keys, or HMU_TRUSTED_KEYS (key files joined by ':', ';' on Windows).
"""

_SIGN_EPILOG = """examples:
  hmu sign --bundle runs/bundles/safe --key keys/studio

Checks the bundle fully (every hash and manifest field), then writes DIR/signature.json: an
ed25519 signature over the bundle's digest (one sha256 over manifest.json and every file).
Any later change to the manifest or a file makes trusting runtimes refuse the bundle.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu keygen`` and ``hmu sign``."""
    p = sub.add_parser(
        "keygen", help="make an ed25519 key pair for signing bundles",
        description="Make an ed25519 key pair: KEY (private) and KEY.pub (public).",
        epilog=_KEYGEN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, metavar="KEY",
                   help="private key file to create (KEY.pub is written beside it)")
    p.add_argument("--comment", default="", help="text after the public key (e.g. a name)")
    p.set_defaults(run=run_keygen)
    s = sub.add_parser(
        "sign", help="sign a bundle with a private key from 'hmu keygen'",
        description="Sign an exported bundle so runtimes that trust the key accept it.",
        epilog=_SIGN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--bundle", type=Path, required=True, metavar="DIR",
                   help="bundle directory made by 'hmu export'")
    s.add_argument("--key", type=Path, required=True, metavar="KEY",
                   help="private key file made by 'hmu keygen'")
    s.set_defaults(run=run_sign)


def run_keygen(args: argparse.Namespace) -> int:
    """Write the key pair and print where it is and its id."""
    from exporter.signing import generate_keypair

    private, public, key_id = generate_keypair(args.out, args.comment)
    print(f"{private}: private key (keep it secret); {public}: public key, id {key_id}")
    return 0


def run_sign(args: argparse.Namespace) -> int:
    """Sign the bundle and print the key id."""
    from exporter.signing import sign_bundle

    key_id = sign_bundle(args.bundle, args.key)
    print(f"{args.bundle}: signed with key {key_id}")
    return 0
