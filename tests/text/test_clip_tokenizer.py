"""hmu_core.text.clip_tokenizer must give clip.tokenize's ids (truncate=True) without torch."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hmu_core.errors import ConfigError
from hmu_core.text.clip_tokenizer import (
    CONTEXT_LENGTH,
    EOT_TOKEN,
    SOT_TOKEN,
    CLIPTokenizer,
    eot_positions,
    find_vocab,
    split_pieces,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FIXTURE = HERE / "clip_tokens_fixture.json"
CAPTIONS = REPO.parent / "shared" / "data" / "humanml3d_texts.jsonl.gz"


@pytest.fixture(scope="module")
def tok() -> CLIPTokenizer:
    return CLIPTokenizer()


def _reference_ids(ref, text: str) -> list[int]:
    """``clip.tokenize([text], truncate=True)[0]`` without the zero padding."""
    ids = [SOT_TOKEN, *ref.encode(text), EOT_TOKEN]
    if len(ids) > CONTEXT_LENGTH:
        ids = ids[:CONTEXT_LENGTH]
        ids[-1] = EOT_TOKEN
    return ids


def _check_rows(ours: np.ndarray, expected: list[list[int]], texts: list[str]) -> None:
    bad = []
    for row, ids, text in zip(ours, expected, texts, strict=True):
        padded = ids + [0] * (CONTEXT_LENGTH - len(ids))
        if row.tolist() != padded:
            bad.append(text)
    assert not bad, f"{len(bad)} of {len(texts)} texts differ from clip.tokenize, e.g. {bad[:3]!r}"


def test_matches_stored_clip_ids(tok):
    cases = json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 300
    texts = [c["text"] for c in cases]
    ours = tok.tokenize(texts)
    assert ours.shape == (len(texts), CONTEXT_LENGTH) and ours.dtype == np.int64
    _check_rows(ours, [c["ids"] for c in cases], texts)


def test_matches_openai_clip_on_captions_and_fuzz(tok, openai_clip):
    # skips without openai-clip; the stored-ids test covers that case
    ref = openai_clip("simple_tokenizer").SimpleTokenizer()
    texts = [c["text"] for c in json.loads(FIXTURE.read_text(encoding="utf-8"))["cases"]]
    if CAPTIONS.is_file():  # a few hundred real HumanML3D captions, read at run time
        with gzip.open(CAPTIONS, "rt", encoding="utf-8") as fh:
            lines = [json.loads(next(fh))["lines"] for _ in range(150)]
        texts += [ln.split("#")[0] for group in lines for ln in group]
    rng = random.Random(0)
    pool = [chr(c) for c in [*range(0x20, 0x250), *range(0x370, 0x400), *range(0x2000, 0x2070),
                             0x345, 0x17F, 0xFB05, 0x1F600, 0xFF21, 0x1C, 0x85, 0xA0, 0x3000]]
    pool += ["'s", "'S", "'ll", "<|endoftext|>", "&amp;", "’", "â€™", "\n", " ", "7"]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(0, 30))) for _ in range(300)]
    assert len(texts) > 900
    _check_rows(tok.tokenize(texts), [_reference_ids(ref, t) for t in texts], texts)


def _runs(chars: list[str]) -> list[list[int]]:
    out: list[list[int]] = []
    for cp in sorted(ord(c) for c in chars):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def test_class_table_matches_installed_regex():
    regex = pytest.importorskip("regex")
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    table = json.loads((REPO / "hmu_core" / "text" / "clip_unicode_classes.json").read_text())
    for name, cls in [("letter", r"[\p{L}]"), ("number", r"[\p{N}]"), ("space", r"\s")]:
        assert table[name] == _runs(regex.findall(cls, text, regex.IGNORECASE)), (
            f"{name} class differs from regex {regex.__version__}: rerun "
            f"scripts/make_clip_tokenizer_tables.py")


@pytest.mark.slow
def test_scanner_matches_regex_on_every_code_point():
    regex = pytest.importorskip("regex")
    pattern = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
                            r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""", regex.IGNORECASE)
    # every code point once, in runs that mix classes, so both the classes and the run
    # boundaries are compared
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    random.Random(1).shuffle(cps)
    text = "".join(chr(c) for c in cps)
    chunks = [text[i:i + 4096] for i in range(0, len(text), 4096)]
    bad = [i for i, ch in enumerate(chunks) if split_pieces(ch) != pattern.findall(ch)]
    assert not bad, (f"{len(bad)} chunks split differently from regex {regex.__version__}: "
                     f"rerun scripts/make_clip_tokenizer_tables.py")


def test_known_ids(tok):
    # runtime.md §2: clip.tokenize("a person walks forward and waves")
    row = tok.tokenize("a person walks forward and waves")[0]
    assert row[:8].tolist() == [49406, 320, 2533, 8192, 2342, 537, 7882, 49407]
    assert not row[8:].any()
    assert eot_positions(tok.tokenize(["a", "a person walks"])).tolist() == [2, 4]


def test_truncation(tok):
    long_text = "walk " * 200
    row = tok.tokenize([long_text])[0]
    assert row[0] == SOT_TOKEN and row[-1] == EOT_TOKEN and (row[1:-1] != 0).all()
    with pytest.raises(ConfigError, match="context length 77"):
        tok.tokenize([long_text], truncate=False)
    # exactly 77 ids fits without truncation
    assert tok.tokenize(["walk " * 75], truncate=False)[0, -1] == EOT_TOKEN


def test_cleanup_rules(tok):
    same = tok.tokenize(["A  Person\u00a0WALKS\n", "a person walks", "a person walks"])
    assert (same[0] == same[1]).all()
    # ftfy straightens curly quotes; HTML entities are unescaped (twice)
    assert (tok.tokenize(["person’s"])[0] == tok.tokenize(["person's"])[0]).all()
    assert (tok.tokenize(["tom &amp;amp; jerry"])[0] == tok.tokenize(["tom & jerry"])[0]).all()


def test_bad_input(tok, tmp_path):
    with pytest.raises(ConfigError, match=r"texts\[1\] is int"):
        tok.tokenize(["ok", 3])
    with pytest.raises(ConfigError, match="not found"):
        find_vocab(tmp_path / "nope.txt.gz")
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(gzip.compress(b"header\na b\n"))
    with pytest.raises(ConfigError, match="not CLIP's BPE vocabulary"):
        CLIPTokenizer(bad)


def test_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from hmu_core.text.clip_tokenizer import CLIPTokenizer\n"
            "print(CLIPTokenizer().tokenize(['a person walks'])[0, :5].tolist())\n"
            "assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules\n"
            "               if sys.modules[m] is not None)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[49406, 320, 2533, 8192, 49407]"
