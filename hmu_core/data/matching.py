"""Whole-word keyword matching with inflections (the ``word`` match mode of concepts).

``inflections("kick")`` gives kick, kicks, kicked, kicking, kicker, kickers; ``word_pattern``
compiles them into one case-insensitive regex with word boundaries. Torch-free, stdlib only.
"""

from __future__ import annotations

import re
from functools import lru_cache

_IRREGULAR: dict[str, tuple[str, ...]] = {
    "beat": ("beaten",),
    "shoot": ("shot", "shots"),
    "fight": ("fought",),
    "throw": ("threw", "thrown"),
    "slide": ("slid",),
    "creep": ("crept",),
    "leap": ("leapt",),
}
_VOWELS = set("aeiou")


def inflections(word: str) -> tuple[str, ...]:
    """Regular inflected forms of one lower-case word (plus a few irregular ones).

    kick -> kick, kicks, kicked, kicking, kicker, kickers; jab -> jabbed, jabbing (doubled final
    consonant after a single short vowel); boxe -> boxes, boxed, boxing, boxer (final e dropped
    before -ing); punch -> punches.
    """
    w = word.lower()
    if w.endswith("e"):
        forms = {w, w + "s", w + "d", w + "r", w + "rs", w[:-1] + "ing"}
    else:
        forms = {w, w + "s", w + "ed", w + "ing", w + "er", w + "ers"}
    if w.endswith(("s", "x", "z", "ch", "sh")):
        forms |= {w + "es"}
    if (
        len(w) >= 3
        and w[-1] not in _VOWELS | {"w", "x", "y"}
        and w[-2] in _VOWELS
        and w[-3] not in _VOWELS
    ):
        forms |= {w + w[-1] + suffix for suffix in ("ed", "ing", "er", "ers")}
    forms |= set(_IRREGULAR.get(w, ()))
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


@lru_cache(maxsize=1024)
def word_pattern(keyword: str, exclude: frozenset[str] = frozenset()) -> re.Pattern[str]:
    """Case-insensitive whole-word regex for ``keyword`` and its inflections.

    ``exclude`` removes forms that are keywords of their own in the same concept, so each
    form is counted under one keyword only (``boxe`` would otherwise inflect to ``boxing``,
    which the official list has as a separate keyword).
    """
    words = keyword.strip().lower().split()
    forms = [f for f in inflections(words[-1]) if f == words[-1] or f not in exclude]
    head = [re.escape(w) for w in words[:-1]]
    last = "(?:" + "|".join(re.escape(f) for f in forms) + ")"
    body = r"[\s-]+".join([*head, last])
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


@lru_cache(maxsize=1024)
def prefilter(keyword: str) -> str:
    """A lower-case substring every form of ``keyword`` contains (a cheap test before the
    regex: most captions contain no keyword at all)."""
    words = keyword.strip().lower().split()
    if len(words) > 1:
        return words[0]
    forms = inflections(words[0])
    prefix = forms[0]
    for form in forms[1:]:
        while not form.startswith(prefix):
            prefix = prefix[:-1]
    return prefix
