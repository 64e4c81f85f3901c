"""Named toxic concepts, caption matching in two modes, detoxification and ``ConceptSplit``.

A concept is a keyword list; a motion id belongs to the forget set of a concept when at least
``min_occurrences`` of its caption lines match one of the keywords. Two matching modes:

* ``official`` reproduces the official HMU scripts (``reference/momask.md`` §0.2,
  ``reference/baselines.md`` §4.1): ``grep -Ec "kw1|kw2|..."`` over the *whole* raw line of
  ``texts/<id>.txt`` (caption plus ``word/POS`` tokens plus the time tags), i.e. a
  case-sensitive substring test. Quirks kept on purpose: ``hit`` matches "w*hit*e",
  ``beat`` matches "*beat*s" (music) and ``hook`` matches "*hook*s"; a capitalised "Kick" does
  not match. Use it to compare with the paper.
* ``word`` is what a user usually means: case-insensitive, whole words only, with regular
  inflections (kick/kicks/kicking/kicked/kicker, jab/jabbing/jabbed, stab/stabbed) and a few
  irregular ones (shoot/shot, beat/beaten), matched on the caption sentence only (the token
  field repeats the same words as lemmas). Multi-word keywords ("kung fu") allow any run of
  spaces or hyphens between the words.

Torch-free: stdlib and numpy only.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from hmu_core.data.matching import inflections, prefilter, word_pattern
from hmu_core.errors import ConfigError

__all__ = [
    "BUILTIN_CONCEPTS",
    "Concept",
    "ConceptSplit",
    "Count",
    "MatchMode",
    "SplitResult",
    "caption_is_toxic",
    "caption_text",
    "detoxify",
    "inflections",
    "load_concepts",
    "matched_keywords",
    "resolve_concepts",
    "word_pattern",
]


class MatchMode(StrEnum):
    """How a keyword is matched against a caption line (see the module docstring)."""

    OFFICIAL = "official"
    WORD = "word"


@dataclass(frozen=True)
class Concept:
    """A named toxic concept.

    Attributes:
        name: identifier used in split file names (``train_val-w-<name>.txt``).
        keywords: the keywords; in ``official`` mode plain case-sensitive substrings.
        min_occurrences: caption lines of one motion id that must match for the id to be toxic
            (official default 1; the official ``night_script.sh`` uses 2).
    """

    name: str
    keywords: tuple[str, ...]
    min_occurrences: int = 1

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ConfigError(
                f"concept name {self.name!r} is not usable in a file name; use letters, digits,"
                " '_', '-' or '.'"
            )
        if not self.keywords or any(not str(k).strip() for k in self.keywords):
            raise ConfigError(f"concept {self.name!r} needs a non-empty list of non-empty keywords")
        if int(self.min_occurrences) < 1:
            raise ConfigError(
                f"concept {self.name!r}: min_occurrences must be >= 1, got {self.min_occurrences}"
            )


_VIOLENCE = ("kick", "punch", "hit", "beat", "boxe", "boxing", "jab", "uppercut", "hook")
_WEAPONS = ("gun", "shoot", "sword", "knife", "stab")
_MARTIAL_ARTS = ("kung fu", "taekwondo", "karate")

BUILTIN_CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in (
        # The official HMU keyword lists (assets/splits.json of Mamiglia/hmu).
        Concept("violence", _VIOLENCE),
        Concept("kick", ("kick",)),
        Concept("punch", ("punch",)),
        Concept("punch_jab_box_hit_beat", ("punch", "jab", "boxe", "boxing", "hit", "beat")),
        Concept("jump_leap_hop", ("jump", "leap", "hop")),
        Concept("crawl_creep_slide", ("crawl", "creep", "slide")),
        Concept("zombie", ("zombie",)),
        Concept("duck_squat", ("duck", "squat")),
        Concept("throw", ("throw",)),
        # Motion-X additions.
        Concept("weapons", _WEAPONS),
        Concept("martial_arts", _MARTIAL_ARTS),
        Concept("gun_shoot", ("gun", "shoot")),
        Concept("violence_motionx", _VIOLENCE + _WEAPONS + _MARTIAL_ARTS),
    )
}
"""Built-in concepts: the official HumanML3D and Motion-X keyword lists."""


# --------------------------------------------------------------------------- concept files


def _concept_from_mapping(name: str, spec: object, source: Path) -> Concept:
    if isinstance(spec, list):
        spec = {"keywords": spec}
    if not isinstance(spec, dict) or "keywords" not in spec:
        raise ConfigError(
            f"{source}: concept {name!r} must be a keyword list or a table with 'keywords'"
            " (and optionally 'min_occurrences')"
        )
    unknown = set(spec) - {"keywords", "min_occurrences"}
    if unknown:
        raise ConfigError(f"{source}: concept {name!r} has unknown keys {sorted(unknown)}")
    keywords = spec["keywords"]
    if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
        raise ConfigError(f"{source}: concept {name!r}: 'keywords' must be a list of strings")
    min_occ = spec.get("min_occurrences", 1)
    if not isinstance(min_occ, int) or isinstance(min_occ, bool):
        raise ConfigError(f"{source}: concept {name!r}: 'min_occurrences' must be an integer")
    return Concept(name, tuple(keywords), min_occ)


def load_concepts(path: str | Path) -> dict[str, Concept]:
    """Read user concepts from a TOML or JSON file.

    Both formats hold a table of concepts, optionally under a top-level ``concepts`` key::

        [concepts.fight]                      # TOML
        keywords = ["kick", "punch", "fight"]
        min_occurrences = 1

        {"concepts": {"fight": ["kick", "punch", "fight"]}}   # JSON, list shorthand

    Raises:
        ConfigError: the file is missing, unparsable, or a concept is malformed.
    """
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"concept file {source} does not exist")
    try:
        if source.suffix.lower() == ".json":
            raw = json.loads(source.read_text(encoding="utf-8"))
        else:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"concept file {source} cannot be parsed: {error}") from error
    if isinstance(raw, dict) and isinstance(raw.get("concepts"), dict):
        raw = raw["concepts"]
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"concept file {source} holds no concept table")
    return {name: _concept_from_mapping(name, spec, source) for name, spec in raw.items()}


def _looks_like_file(item: str) -> bool:
    # By suffix only: a built-in name never turns into a file because one exists in the cwd.
    return item.lower().endswith((".toml", ".json"))


def resolve_concepts(names_or_path: Sequence[str]) -> list[Concept]:
    """Turn CLI items into concepts: built-in names, and/or TOML/JSON concept files.

    Concepts from files join the known names (overriding built-ins of the same name). If only
    files are given, all their concepts are returned; otherwise the named ones, in order.

    Raises:
        ConfigError: an unknown name (the message lists the known ones) or a bad file.
    """
    known = dict(BUILTIN_CONCEPTS)
    names: list[str] = []
    from_files: list[str] = []
    for item in names_or_path:
        if _looks_like_file(item):
            loaded = load_concepts(item)
            known.update(loaded)
            from_files.extend(n for n in loaded if n not in from_files)
        else:
            names.append(item)
    if not names:
        if not from_files:
            raise ConfigError("no concept given; name one of " + ", ".join(sorted(known)))
        return [known[n] for n in from_files]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown concept(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            " (or pass a TOML/JSON concept file)"
        )
    return [known[n] for n in dict.fromkeys(names)]


# --------------------------------------------------------------------------- matching

def _concept_pattern(keyword: str, concept: Concept) -> re.Pattern[str]:
    others = frozenset(k.strip().lower() for k in concept.keywords if k != keyword)
    return word_pattern(keyword, others)


def caption_text(line: str) -> str:
    """The sentence of a ``caption#tokens#start#end`` line (the whole string if no '#')."""
    return line.split("#", 1)[0]


def matched_keywords(caption: str, concept: Concept, mode: MatchMode) -> tuple[str, ...]:
    """Keywords of ``concept`` found in one caption line, in the concept's order.

    Args:
        caption: a raw ``texts/`` line or a bare sentence. ``official`` searches the whole
            string (as grep does), ``word`` only the sentence before the first '#'.
        mode: the matching mode.
    """
    mode = MatchMode(mode)
    if mode is MatchMode.OFFICIAL:
        return tuple(k for k in concept.keywords if k in caption)
    text = caption_text(caption)
    lowered = text.lower()
    return tuple(
        k
        for k in concept.keywords
        if prefilter(k) in lowered and _concept_pattern(k, concept).search(text)
    )


def caption_is_toxic(caption: str, concepts: Sequence[Concept], mode: MatchMode) -> bool:
    """True if any keyword of any concept matches this one caption line."""
    return any(matched_keywords(caption, c, mode) for c in concepts)


_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_DOUBLE_PUNCT = re.compile(r"([,;:])\s*(?=[,;:.!?]|$)")


def detoxify(caption: str, concepts: Sequence[Concept], mode: MatchMode = MatchMode.WORD) -> str:
    """Remove every toxic word from a caption sentence and tidy the whitespace.

    Used for MM-Notox: the evaluator compares a generated motion with the caption *without* the
    toxic words. In ``word`` mode every inflected keyword (and "kung fu" style phrases) goes; in
    ``official`` mode every whitespace-separated word that contains a keyword substring goes
    (so "white" goes with ``hit``, as the official split counts it toxic).

    Args:
        caption: the sentence (not a full ``#`` line; pass ``caption_text(line)`` for those).
    """
    mode = MatchMode(mode)
    text = caption
    keywords = [k for c in concepts for k in c.keywords]
    if mode is MatchMode.OFFICIAL:
        text = " ".join(w for w in text.split() if not any(k in w for k in keywords))
    else:
        for keyword in sorted(keywords, key=len, reverse=True):
            text = word_pattern(keyword).sub(" ", text)
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _DOUBLE_PUNCT.sub("", text)
    return text.strip(" ,;:")


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Count:
    """``matching`` ids out of ``considered`` ids; ``share`` is their ratio (0 if none)."""

    matching: int
    considered: int

    @property
    def share(self) -> float:
        return self.matching / self.considered if self.considered else 0.0

    def to_json(self) -> dict[str, float | int]:
        return {"matching": self.matching, "considered": self.considered, "share": self.share}


@dataclass(frozen=True)
class SplitResult:
    """Outcome of :meth:`ConceptSplit.split` (ids keep the input order).

    Attributes:
        forget_ids: ids toxic for at least one concept.
        retain_ids: the other ids considered.
        concept_forget: per concept, its own forget ids.
        concept_counts: per concept, matching and considered ids.
        keyword_counts: per concept, per keyword, ids with >= min_occurrences lines matching
            that keyword alone.
        mode: the matching mode used.
    """

    forget_ids: tuple[str, ...]
    retain_ids: tuple[str, ...]
    concept_forget: dict[str, tuple[str, ...]]
    concept_counts: dict[str, Count]
    keyword_counts: dict[str, dict[str, Count]]
    mode: MatchMode
    total: Count = field(default=Count(0, 0))


class ConceptSplit:
    """Split motion ids into forget (toxic) and retain sets by their captions.

    Example::

        split = ConceptSplit(resolve_concepts(["violence"]), MatchMode.OFFICIAL)
        result = split.split({"000000": ["a man kicks ...#...#0.0#0.0"]})
    """

    def __init__(
        self,
        concepts: Sequence[Concept],
        mode: MatchMode | str = MatchMode.OFFICIAL,
        min_occurrences: int | None = None,
    ) -> None:
        """``min_occurrences``, if given, overrides every concept's own value."""
        if not concepts:
            raise ConfigError("ConceptSplit needs at least one concept")
        try:
            self.mode = MatchMode(mode)
        except ValueError as error:
            raise ConfigError(f"unknown match mode {mode!r}; use 'official' or 'word'") from error
        if min_occurrences is not None:
            concepts = [replace(c, min_occurrences=min_occurrences) for c in concepts]
        self.concepts = tuple(concepts)

    def split(self, captions: Mapping[str, Sequence[str]]) -> SplitResult:
        """Classify every id of ``captions`` (motion id -> its caption lines)."""
        forget: list[str] = []
        retain: list[str] = []
        per_concept: dict[str, list[str]] = {c.name: [] for c in self.concepts}
        per_keyword = {c.name: dict.fromkeys(c.keywords, 0) for c in self.concepts}
        for motion_id, lines in captions.items():
            toxic = False
            for concept in self.concepts:
                hits = [matched_keywords(line, concept, self.mode) for line in lines]
                need = concept.min_occurrences
                if sum(1 for h in hits if h) >= need:
                    per_concept[concept.name].append(motion_id)
                    toxic = True
                for keyword in concept.keywords:
                    if sum(1 for h in hits if keyword in h) >= need:
                        per_keyword[concept.name][keyword] += 1
            (forget if toxic else retain).append(motion_id)
        n = len(captions)
        return SplitResult(
            forget_ids=tuple(forget),
            retain_ids=tuple(retain),
            concept_forget={k: tuple(v) for k, v in per_concept.items()},
            concept_counts={k: Count(len(v), n) for k, v in per_concept.items()},
            keyword_counts={
                c: {k: Count(m, n) for k, m in kws.items()} for c, kws in per_keyword.items()
            },
            mode=self.mode,
            total=Count(len(forget), n),
        )
