"""A tiny template grammar whose every word carries its HumanML3D token.

Why not tag the generated sentences afterwards: spaCy is not available, and a grammar that
knows what it wrote can emit the exact ``word/UPOS`` items of the HumanML3D convention
(``reference/humanml3d.md`` §8): NOUN and VERB tokens are lemmas (except the literal ``left``),
every other part of speech keeps its surface form, punctuation is dropped.

Template syntax (whitespace separates items):

* ``word`` -- a lexicon word; its lemma and UPOS come from :data:`LEXICON`.
* ``word:POS`` -- the same word with an explicit UPOS (``left:NOUN`` in "to the left").
* ``~verb`` -- a verb conjugated in the form of the surrounding construction (``s``: "kicks",
  ``ing``: "kicking", ``base``: "kick"); ``~verb:ing`` forces one form.
* ``$slot`` -- another template, looked up by name in the slots given to :func:`expand`.
* ``(a b|c d)`` -- one alternative, uniformly; ``[a b]`` -- optional, included half the time.
* ``,`` -- a comma (kept in the text, dropped from the tokens).

Templates are parsed once and cached; an unknown word raises at parse time, so a test that
parses every template proves the lexicon covers the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Union

import numpy as np

from hmu_core.errors import ConfigError
from hmu_core.synth.caption_lexicon import LEXICON, conjugate

VERB_FORMS = ("s", "ing", "base")
"""Verb forms a construction may ask for: third person singular, gerund, bare infinitive."""


@dataclass(frozen=True)
class Word:
    """One word of a generated caption: what is written and what the token line says."""

    surface: str
    token: str
    pos: str


COMMA = Word(",", "", "PUNCT")


def make_word(surface: str, lemma: str, pos: str) -> Word:
    """Build a word with the HumanML3D token rule: NOUN/VERB lemmatised, 'left' kept."""
    if pos in ("NOUN", "VERB") and surface != "left":
        return Word(surface, lemma, pos)
    return Word(surface, surface, pos)


# ---- parsing ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Lit:
    word: Word


@dataclass(frozen=True)
class _Verb:
    lemma: str
    form: str | None  # None: the form of the construction


@dataclass(frozen=True)
class _Slot:
    name: str


@dataclass(frozen=True)
class _Choice:
    options: tuple[tuple[_Node, ...], ...]
    optional: bool


_Node = Union[_Lit, _Verb, _Slot, _Choice]  # noqa: UP007 (recursive alias needs the old form)

_TOKEN = re.compile(r"\(|\)|\||\[|\]|,|[^\s()|\[\],]+")


def _parse_item(item: str, template: str) -> _Node:
    if item == ",":
        return _Lit(COMMA)
    if item.startswith("$"):
        return _Slot(item[1:])
    if item.startswith("~"):
        lemma, _, form = item[1:].partition(":")
        if form and form not in VERB_FORMS:
            raise ConfigError(f"caption template {template!r}: unknown verb form {form!r}")
        conjugate(lemma)  # raises on a verb the lexicon cannot conjugate
        return _Verb(lemma, form or None)
    surface, _, pos = item.partition(":")
    entry = LEXICON.get(surface)
    if entry is None:
        raise ConfigError(f"caption template {template!r}: word {surface!r} is not in the "
                          "caption lexicon; add it to hmu_core/synth/caption_lexicon.py")
    lemma, default_pos = entry
    return _Lit(make_word(surface, lemma, pos or default_pos))


@lru_cache(maxsize=4096)
def parse(template: str) -> tuple[_Node, ...]:
    """Parse a template into nodes (cached).

    Raises:
        ConfigError: unbalanced brackets, an unknown word or an unknown verb form.
    """
    items = _TOKEN.findall(template)
    pos = 0

    def seq(closers: str) -> tuple[tuple[_Node, ...], ...]:
        nonlocal pos
        options: list[tuple[_Node, ...]] = []
        current: list[_Node] = []
        while pos < len(items):
            item = items[pos]
            pos += 1
            if item in closers:
                options.append(tuple(current))
                return tuple(options)
            if item == "|":
                options.append(tuple(current))
                current = []
            elif item in "([":
                inner = seq(")" if item == "(" else "]")
                current.append(_Choice(inner, optional=item == "["))
            elif item in ")]":
                raise ConfigError(f"caption template {template!r}: unbalanced {item!r}")
            else:
                current.append(_parse_item(item, template))
        if closers:
            raise ConfigError(f"caption template {template!r}: missing {closers!r}")
        options.append(tuple(current))
        return tuple(options)

    top = seq("")
    if len(top) != 1:
        raise ConfigError(f"caption template {template!r}: '|' outside brackets")
    return top[0]


# ---- expansion -------------------------------------------------------------------------------

def expand(template: str, rng: np.random.Generator, slots: dict[str, str] | None = None,
           form: str = "s") -> list[Word]:
    """Expand a template into words, drawing every choice from ``rng``.

    Args:
        template: template text (syntax in the module docstring).
        rng: source of every choice.
        slots: slot name -> template; a slot is expanded recursively in the same form.
        form: verb form for unmarked verbs: "s", "ing" or "base".

    Raises:
        ConfigError: bad template, unknown slot or form.
    """
    if form not in VERB_FORMS:
        raise ConfigError(f"unknown verb form {form!r}; expected one of {VERB_FORMS}")
    slots = slots or {}
    out: list[Word] = []

    def walk(nodes: tuple[_Node, ...], depth: int) -> None:
        if depth > 20:
            raise ConfigError(f"caption template {template!r}: slots nest too deep (a cycle?)")
        for node in nodes:
            if isinstance(node, _Lit):
                out.append(node.word)
            elif isinstance(node, _Verb):
                out.append(make_word(conjugate(node.lemma)[node.form or form], node.lemma,
                                     "VERB"))
            elif isinstance(node, _Slot):
                if node.name not in slots:
                    raise ConfigError(f"caption template {template!r}: no slot ${node.name}")
                walk(parse(slots[node.name]), depth + 1)
            elif node.optional:
                if rng.random() < 0.5:
                    walk(node.options[0], depth)
            else:
                walk(node.options[int(rng.integers(len(node.options)))], depth)

    walk(parse(template), 0)
    return out


def render(words: list[Word], period: bool = True) -> str:
    """Join words into caption text: spaces between words, commas attached, optional period."""
    text = ""
    for word in words:
        if word is COMMA or word.pos == "PUNCT":
            text = text.rstrip() + word.surface
        else:
            text = f"{text} {word.surface}" if text else word.surface
    return text + ("." if period else "")


# ---- shared phrases ---------------------------------------------------------------------------

NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 8: "eight"}


def reps(n: int) -> str:
    """How often, as an adverbial: "[once]", "(twice|two times|...)", "three times"."""
    if n == 1:
        return "[(once|one time)]"
    if n == 2:
        return "(twice|two times|two times in a row|a couple of times|twice in a row)"
    word = NUMBERS[n]
    return (f"({word} times|{word} times in a row|{word} (consecutive|separate) times|"
            f"repeatedly , {word} times in total|{word} times in total)")


def count(n: int, singular: str, plural: str, adjective: str = "") -> str:
    """A counted noun phrase: "(a|one|a single) quick kick", "two quick kicks"."""
    if n == 1:
        return f"(a|one|a single) {adjective} {singular}"
    return f"{NUMBERS[n]} {adjective} {plural}"


def speed(value: str) -> str:
    """The speed as an adverbial; usually empty for normal speed."""
    return {
        "slow": "(slowly|very slowly|at a slow pace|in a slow manner|slowly and carefully|"
                "at a slow speed|in slow motion|in a slow fashion|gently)",
        "fast": "(quickly|rapidly|fast|very quickly|at a fast pace|at a quick pace|"
                "in a quick motion|at high speed|with speed)",
        "normal": "(|||at a (normal|steady|moderate|regular|medium) (pace|speed))",
    }[value]


def speed_adj(value: str) -> str:
    """The speed as an adjective before a noun ("a quick kick"); empty for normal speed."""
    return {"slow": "(slow|gentle)", "fast": "(quick|fast|rapid)", "normal": ""}[value]


def tokens_of(words: list[Word]) -> tuple[tuple[str, str], ...]:
    """The HumanML3D token items of the words: alphabetic words only, in order."""
    return tuple((w.token, w.pos) for w in words if w.pos != "PUNCT" and w.surface.isalpha())
