"""Write the Unicode class table that lets ``hmu_core.text.clip_tokenizer`` run without ``regex``.

OpenAI's tokenizer splits text with the ``regex`` package's pattern
``'s|'t|…|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+`` under IGNORECASE, and cleans whitespace with
``regex``'s ``\\s``. Those classes follow ``regex``'s own Unicode tables, which are newer than
``unicodedata`` in Python 3.11 (Unicode 14) and differ from ``str.isspace`` on U+001C..U+001F.
Asking ``regex`` itself, once, for every code point and storing the answer as ranges makes the
pure-Python tokenizer give the same pieces on any Python version. A code point that none of
the pattern's classes matches (U+0345 under IGNORECASE) goes to ``none``: ``findall`` skips it.

Usage (needs ``pip install regex``; rerun after upgrading it, then commit the JSON):
    .venv/bin/python scripts/make_clip_tokenizer_tables.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import regex

OUT = Path(__file__).resolve().parents[1] / "hmu_core" / "text" / "clip_unicode_classes.json"


def _ranges(code_points: list[int]) -> list[list[int]]:
    """Sorted code points -> inclusive ``[first, last]`` runs."""
    out: list[list[int]] = []
    for cp in code_points:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def main() -> int:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    flags = regex.IGNORECASE
    classes = {
        "letter": regex.findall(r"[\p{L}]", text, flags),
        "number": regex.findall(r"[\p{N}]", text, flags),
        "space": regex.findall(r"\s", text, flags),
        "other": regex.findall(r"[^\s\p{L}\p{N}]", text, flags),
    }
    sets = {name: {ord(c) for c in found} for name, found in classes.items()}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if sets[a] & sets[b]:
                print(f"classes {a} and {b} overlap; the tokenizer assumes they do not",
                      file=sys.stderr)
                return 1
    covered = set().union(*sets.values())
    none = sorted(ord(c) for c in text if ord(c) not in covered)
    table = {
        "about": "Unicode classes of OpenAI CLIP's token pattern, from the regex package "
                 "(IGNORECASE); 'other' is every code point not listed. Made by "
                 "scripts/make_clip_tokenizer_tables.py.",
        "regex_version": regex.__version__,
        "letter": _ranges(sorted(sets["letter"])),
        "number": _ranges(sorted(sets["number"])),
        "space": _ranges(sorted(sets["space"])),
        "none": _ranges(none),
    }
    OUT.write_text(json.dumps(table, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes; regex {regex.__version__}; "
          f"{len(sets['letter'])} letters, {len(sets['number'])} numbers, "
          f"{len(sets['space'])} spaces, {len(none)} unmatched)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
