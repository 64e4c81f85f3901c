"""One digest per bundle; ed25519 signing; runtimes locked to trusted keys."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from exporter import signing
from exporter.runtime import Generator, read_bundle, trust
from exporter.runtime.bundle import bundle_digest, sha256_file
from hmu_core.cli import main as main_cli
from hmu_core.errors import BundleError, ConfigError


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch):
    monkeypatch.delenv(trust.ENV, raising=False)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    studio, _, _ = signing.generate_keypair(root / "studio", "studio")
    other, _, _ = signing.generate_keypair(root / "other")
    return {"studio": studio, "studio.pub": root / "studio.pub", "other": other,
            "other.pub": root / "other.pub"}


@pytest.fixture
def signed(momask_bundle, tmp_path, keys) -> Path:
    out = tmp_path / "signed"
    shutil.copytree(momask_bundle, out)
    signing.sign_bundle(out, keys["studio"])
    return out


def _edit(root: Path, edit) -> None:
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_one_digest_over_manifest_and_files(momask_bundle, tmp_path):
    bundle = read_bundle(momask_bundle)
    files = {n: sha256_file(momask_bundle / n) for n in bundle.manifest["files"]}
    assert bundle.digest == bundle_digest(sha256_file(momask_bundle / "manifest.json"), files)
    runtime = Generator(momask_bundle, device="cpu", threads=1)
    assert runtime.digest == bundle.digest
    motion = runtime.generate("a person walks", seconds=2.0).motions[0]
    assert motion.provenance["bundle_sha256"] == bundle.digest
    # One byte of the manifest (here: its formatting) changes the identity.
    copy = tmp_path / "copy"
    shutil.copytree(momask_bundle, copy)
    assert read_bundle(copy).digest == bundle.digest
    (copy / "manifest.json").write_text((copy / "manifest.json").read_text() + " ")
    assert read_bundle(copy).digest != bundle.digest


def test_keygen_files(keys):
    private, public = keys["studio"], keys["studio.pub"]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    line = public.read_text().strip()
    assert line.startswith("hmu-ed25519 ") and line.endswith(" studio")
    raw = trust.parse_key_line(line, "test")
    assert list(trust.read_key_file(public)) == [trust.key_id(raw)]
    with pytest.raises(ConfigError, match="exists; keys are never overwritten"):
        signing.generate_keypair(private)
    made, _, _ = signing.generate_keypair(private.parent / "new" / "folder" / "k")
    assert made.is_file() and stat.S_IMODE(made.parent.stat().st_mode) == 0o700
    (private.parent / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot make the key folder"):
        signing.generate_keypair(private.parent / "file" / "k")


def test_signed_bundle_loads_for_its_key_only(signed, keys, momask_bundle):
    sig = json.loads((signed / trust.SIGNATURE).read_text())
    bundle = read_bundle(signed, [keys["studio.pub"]])
    assert bundle.signed_by == sig["key_id"] and sig["digest"] == bundle.digest
    assert read_bundle(signed).signed_by is None  # no trusted keys: not checked
    assert Generator(signed, device="cpu", threads=1,
                     trusted_keys=[keys["studio.pub"]]).bundle.signed_by == sig["key_id"]
    with pytest.raises(BundleError, match=r"signed by key \w+, which is not a trusted key"):
        read_bundle(signed, [keys["other.pub"]])
    with pytest.raises(BundleError, match=r"not signed, and trusted keys are configured"):
        Generator(momask_bundle, device="cpu", threads=1, trusted_keys=[keys["studio.pub"]])


@pytest.mark.parametrize("tamper", ["unlearning", "manifest_bytes", "file", "signature_digest",
                                    "signature_bytes", "signature_json", "signature_key"])
def test_changes_after_signing_are_refused(signed, keys, tamper):
    sig_path = signed / trust.SIGNATURE
    sig = json.loads(sig_path.read_text())
    if tamper == "unlearning":  # hide the unlearning record: the manifest is hashed by nothing
        _edit(signed, lambda m: m.__setitem__("unlearning", None))
        match = "the manifest or files changed after signing"
    elif tamper == "manifest_bytes":
        (signed / "manifest.json").write_text((signed / "manifest.json").read_text() + "\n")
        match = "changed after signing"
    elif tamper == "file":  # a swapped graph with its hash recomputed
        shutil.copyfile(signed / "res.onnx", signed / "base.onnx")
        _edit(signed, lambda m: m["files"].__setitem__("base.onnx",
                                                       sha256_file(signed / "base.onnx")))
        match = "changed after signing"
    elif tamper == "signature_digest":  # the attacker also rewrites the signed digest
        _edit(signed, lambda m: m.__setitem__("unlearning", None))
        sig["digest"] = read_bundle(signed).digest
        sig_path.write_text(json.dumps(sig))
        match = "does not verify"
    elif tamper == "signature_bytes":
        sig["signature"] = sig["signature"][::-1]
        sig_path.write_text(json.dumps(sig))
        match = "does not verify"
    elif tamper == "signature_json":
        sig_path.write_text("{not json")
        match = "damaged or not an hmu signature"
    else:  # claim the trusted key's id over another key's signature
        other = signed.parent / "other_signed"
        shutil.copytree(signed, other)
        signing.sign_bundle(other, keys["other"])
        forged = json.loads((other / trust.SIGNATURE).read_text())
        forged["key_id"] = sig["key_id"]
        sig_path.write_text(json.dumps(forged))
        match = "does not verify"
    with pytest.raises(BundleError, match=match) as info:
        Generator(signed, device="cpu", threads=1, trusted_keys=[keys["studio.pub"]])
    assert "\n" not in str(info.value)


def test_environment_keys_cannot_be_dropped(signed, momask_bundle, keys, monkeypatch):
    monkeypatch.setenv(trust.ENV,
                       os.pathsep.join([str(keys["other.pub"]), str(keys["studio.pub"])]))
    assert read_bundle(signed).signed_by is not None
    with pytest.raises(BundleError, match="not signed"):
        read_bundle(momask_bundle, trusted_keys=())


@pytest.mark.parametrize("content, match", [
    ("", "holds no key"),
    ("# only a comment\n", "holds no key"),
    ("ssh-ed25519 AAAA\n", r":1: not an hmu public key"),
    ("hmu-ed25519 !!!\n", r":1: the key is not 32 base64-encoded bytes"),
    ("hmu-ed25519 AAAA\n", r"the key is not 32"),
    ("hmu-ed25519\n", "not an hmu public key"),
    (b"\xff\xfe", "not UTF-8 text"),
])
def test_bad_trusted_key_files(tmp_path, momask_bundle, content, match):
    path = tmp_path / "keys.pub"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=match):
        read_bundle(momask_bundle, [path])
    with pytest.raises(ConfigError, match="cannot read it"):
        read_bundle(momask_bundle, [tmp_path / "missing.pub"])


@pytest.mark.parametrize("content, match", [
    (b"", "not an unencrypted PEM private key"),
    (b"-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n", "not an unencrypted"),
])
def test_bad_signing_keys(tmp_path, momask_bundle, content, match):
    key = tmp_path / "key"
    key.write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        signing.sign_bundle(momask_bundle, key)
    with pytest.raises(ConfigError, match="cannot read it"):
        signing.sign_bundle(momask_bundle, tmp_path / "missing")
    assert not (momask_bundle / trust.SIGNATURE).exists()


def test_other_key_types_and_broken_bundles_are_not_signed(tmp_path, momask_bundle, keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = tmp_path / "ec.pem"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    with pytest.raises(ConfigError, match=r"is a .*PrivateKey, not ed25519"):
        signing.sign_bundle(momask_bundle, key)
    broken = tmp_path / "broken"
    shutil.copytree(momask_bundle, broken)
    (broken / "decoder.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match=r"hash mismatch for decoder.onnx"):
        signing.sign_bundle(broken, keys["studio"])
    assert not (broken / trust.SIGNATURE).exists()


def test_export_sign_checks_the_key_first(momask_set, clip_encoder, tmp_path, keys):
    from exporter.export import export_bundle

    with pytest.raises(ConfigError, match="signing key"):
        export_bundle(momask_set, tmp_path / "b", text_encoder=clip_encoder,
                      sign=tmp_path / "none")
    assert list(tmp_path.iterdir()) == []  # refused before any work
    out = export_bundle(momask_set, tmp_path / "b", text_encoder=clip_encoder,
                        sign=keys["studio"])
    assert read_bundle(out, [keys["studio.pub"]]).signed_by is not None
    assert trust.SIGNATURE not in read_bundle(out).manifest["files"]


def test_runtime_without_cryptography(signed, keys, monkeypatch):
    """No trusted keys: the runtime never imports cryptography (the add-on does not ship it);
    with keys, a missing package is one clear error."""
    for name in [n for n in sys.modules if n == "cryptography" or n.startswith("cryptography.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    assert Generator(signed, device="cpu", threads=1).generate("a person walks", seconds=2.0)
    with pytest.raises(ConfigError, match="needs the cryptography package"):
        Generator(signed, device="cpu", threads=1, trusted_keys=[keys["studio.pub"]])


def test_cli_keygen_sign_and_locked_clips(momask_bundle, tmp_path, keys, capsys, monkeypatch):
    key = tmp_path / "k"
    assert main_cli.main(["keygen", "--out", str(key), "--comment", "me"]) == 0
    assert "private key" in capsys.readouterr().out and key.with_name("k.pub").is_file()
    assert main_cli.main(["keygen", "--out", str(key)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    bundle = tmp_path / "b"
    shutil.copytree(momask_bundle, bundle)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a person walks | 2\n", encoding="utf-8")
    clips = ["clips", str(prompts), "--bundle", str(bundle), "--out", str(tmp_path / "lib"),
             "--formats", "bvh", "--device", "cpu", "--trusted-keys", str(key) + ".pub"]
    assert main_cli.main(clips) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("hmu: error")]
    assert len(errors) == 1 and "not signed" in errors[0]  # one line, no traceback
    assert not (tmp_path / "lib").exists()  # refused before writing anything
    assert main_cli.main(["sign", "--bundle", str(bundle), "--key", str(key)]) == 0
    assert main_cli.main(clips) == 0
    index = json.loads((tmp_path / "lib" / "index.json").read_text())
    assert index["bundle"]["sha256"] == read_bundle(bundle).digest
    # The studio's lock adds to --trusted-keys:
    monkeypatch.setenv(trust.ENV, str(keys["studio.pub"]))
    assert main_cli.main(clips[:-2]) == 2
    assert "not a trusted key" in capsys.readouterr().err


def test_read_only_places(tmp_path, momask_bundle, keys, monkeypatch):
    """A read-only bundle or key folder is one line naming the path (faked: tests run as
    root here, which writes anywhere)."""
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    copy = tmp_path / "copy"
    shutil.copytree(momask_bundle, copy)
    monkeypatch.setattr(signing, "write_json", read_only)
    with pytest.raises(ConfigError, match=r"cannot write .*signature.json \(Read-only file"):
        signing.sign_bundle(copy, keys["studio"])
    monkeypatch.setattr(signing.tempfile, "mkstemp", read_only)
    with pytest.raises(ConfigError, match=r"cannot write the key .*key \(Read-only file"):
        signing.generate_keypair(tmp_path / "key")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
