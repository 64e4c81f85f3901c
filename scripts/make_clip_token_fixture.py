"""Write tests/text/clip_tokens_fixture.json: prompts and the ids OpenAI's tokenizer gives them.

The ids come from ``clip.simple_tokenizer.SimpleTokenizer`` of the ``openai-clip`` package plus
``clip.tokenize``'s framing (sot, ids, eot, truncate to 77 with eot last), which the test suite
compares against ``hmu_core.text.clip_tokenizer`` when openai-clip is not installed. The
prompts are made here (motion-caption templates and edge cases: Unicode, curly quotes, HTML
entities, contractions, special tokens, over-long texts); no dataset text is stored.

``clip/__init__.py`` is bypassed because it imports torchvision (runtime.md §2).

Usage (needs ``pip install openai-clip``):
    .venv/bin/python scripts/make_clip_token_fixture.py
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import random
import sys
import types
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "text" / "clip_tokens_fixture.json"

SUBJECTS = ["a person", "a man", "the woman", "someone", "the figure", "a child", "he", "she"]
ACTIONS = ["walks forward", "runs in a circle", "jumps up and down", "kicks with his left leg",
           "waves the right hand", "sits down slowly", "turns around 180 degrees",
           "throws a ball", "does a cartwheel", "punches twice", "climbs up stairs",
           "crawls on all fours", "dances salsa", "bends over to pick something up"]
TAILS = ["", ".", " and then stops.", ", then walks back", " 3 times!", " while holding a cup",
         " quickly", " (slowly)"]

EDGE_CASES = [
    "", " ", "   \t\n  ", "A PERSON WALKS FORWARD", "a person’s arm swings", "he said “stop”",
    "don't", "DON'T", "it's", "we're", "they've", "I'm", "you'll", "he'd", "'s'", "''ll",
    "rock'n'roll", "person's'", "the 'ſ' long s", "'ſ", "<|startoftext|>", "<|endoftext|>",
    "a <|endoftext|> b", "!<|endoftext|>", "<|ſtartoftext|>", "&amp;", "&amp;amp;",
    "&amp;amp;amp;", "&lt;b&gt;bold&lt;/b&gt;", "tom &amp; jerry", "50% faster", "1234567890",
    "3.14159", "x=1+2", "e-mail", "well-known", "naïve café", "Ångström", "straße", "ﬁne ﬂow",
    "ﬅ ﬆ", "ｆｕｌｌｗｉｄｔｈ", "ＡＢＣ１２３", "日本語のテキスト", "한국어", "中文 文本",
    "Ελληνικά", "ᾳ α\u0345", "a\u0345b", "русский текст", "עברית", "العربية", "हिन्दी",
    "emoji 😀👍🏽", "❤️", "🏳️‍🌈", "â€™ mojibake â€œquotedâ€\x9d", "Ã©tÃ©", "tab\tsep",
    "new\nline", "nbsp\u00a0here", "zero\u200bwidth", "ideographic\u3000space",
    "line\u2028sep", "fs\x1cgs\x1drs\x1eus\x1f", "nel\x85x", "bell\x07", "\ufeffbom",
    "ⅰⅱⅲ Ⅳ", "①②③", "½ ¾", "²³", "٣٤٥", "x²", "K-sign K", "İstanbul", "ǅ ǈ ǋ",
    "...", "?!?!", "--", "~~~", "a,b,c", "(a)[b]{c}", "#hashtag @user", "C:\\path\\file",
    "http://example.com/a?b=c", "<html>", "a  b   c", " leading", "trailing ",
    "word " * 100, "walk " * 76, "walk " * 74, "walk " * 75, "a" * 300,
    "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
]


def _reference():
    """(tokenizer, sot, eot) from openai-clip without running clip/__init__.py."""
    spec = importlib.util.find_spec("clip")
    if spec is None:
        raise SystemExit("openai-clip is not installed: pip install openai-clip")
    pkg = types.ModuleType("clip")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["clip"] = pkg
    from clip.simple_tokenizer import SimpleTokenizer

    tok = SimpleTokenizer()
    return tok, tok.encoder["<|startoftext|>"], tok.encoder["<|endoftext|>"]


def main() -> int:
    tok, sot, eot = _reference()
    rng = random.Random(0)
    combos = list(itertools.product(SUBJECTS, ACTIONS, TAILS))
    rng.shuffle(combos)
    prompts = [f"{s} {a}{t}" for s, a, t in combos[:300]] + EDGE_CASES
    cases = []
    for text in prompts:
        ids = [sot, *tok.encode(text), eot]
        if len(ids) > 77:  # clip.tokenize(truncate=True)
            ids = ids[:77]
            ids[-1] = eot
        cases.append({"text": text, "ids": ids})
    about = ("clip.tokenize(text, truncate=True) ids without the zero padding; made by "
             "scripts/make_clip_token_fixture.py with openai-clip 1.0.1")
    rows = ",\n".join(json.dumps(c, ensure_ascii=True) for c in cases)  # one case per line
    OUT.write_text(f'{{"about": {json.dumps(about)},\n"cases": [\n{rows}\n]}}\n')
    print(f"wrote {len(cases)} cases to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
