"""Captions of synthetic clips in the HumanML3D ``texts/`` line format.

A synthetic clip gets three whole-clip captions, as a real HumanML3D clip gets three annotators'
sentences, plus sometimes one timed caption of a single segment of a composite clip (real
annotators describe sub-spans too; the loaders make them separate items). Verb phrases come from
:mod:`hmu_core.synth.caption_toxic` and :mod:`hmu_core.synth.caption_safe`, which write every
plan parameter as words, so a caption never contradicts its motion; this module wraps them in
sentence constructions (subjects, "is ...ing", "starts to", "after ...ing, ...", endings). The
tokens come from the grammar too (:mod:`hmu_core.synth.caption_grammar`), in the shipped
``word/UPOS`` convention, so no tagger is needed.

Implicit captions (:func:`implicit_captions`) describe toxic movements without any concept
keyword: the attack suite asks an unlearned model for them, and ``caption_clip`` never writes
them, so they stay out of the training text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmu_core.errors import DataError
from hmu_core.synth.caption_grammar import NUMBERS, Word, expand, render, reps, tokens_of
from hmu_core.synth.caption_implicit import IMPLICIT_CAPTIONS
from hmu_core.synth.caption_safe import SAFE_PHRASES
from hmu_core.synth.caption_toxic import TOXIC_PHRASES
from hmu_core.synth.families import FAMILY_BY_NAME, TOXIC_FAMILIES, ClipPlan, Segment

FPS = 20
"""Joint frames per second of HumanML3D and of the synthetic set."""

VERB_PHRASES = {**TOXIC_PHRASES, **SAFE_PHRASES}
"""Family name -> function of the segment's parameters returning verb-phrase templates."""

SUB_CAPTION_PROB = 0.5
"""Chance that a composite clip gets one extra caption timed to one of its segments."""

REPEAT_PROB = 0.12
"""Chance that a repeated action is said as "once, then repeats it n-1 more times"."""

_REPEATABLE = frozenset({"kick", "punch", "uppercut", "overhead_strike", "stab",
                         "knee_elbow_strike", "jump", "wave", "clap", "squat", "bow"})
_MAX_TRIES = 200

# Subjects as real annotators write them, with how often each is drawn and the possessive
# determiners that agree with it; the object, reflexive and second-clause pronoun follow from
# the possessive drawn.
_SUBJECTS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("a person", 0.36, ("their", "his")), ("the person", 0.12, ("their", "his")),
    ("a man", 0.12, ("his",)), ("the man", 0.05, ("his",)), ("someone", 0.06, ("their",)),
    ("a figure", 0.05, ("their",)), ("the figure", 0.03, ("their",)),
    ("a woman", 0.04, ("her",)), ("person", 0.06, ("their",)),
    ("an individual", 0.03, ("their",)), ("a human", 0.03, ("their",)),
    ("the subject", 0.02, ("their",)), ("a character", 0.03, ("their",)),
)
_SUBJECT_P = np.array([w for _, w, _ in _SUBJECTS]) / sum(w for _, w, _ in _SUBJECTS)
_PRONOUNS = {  # possessive -> (object, reflexive, subject pronoun, its verb form)
    "their": ("them", "themselves", "they", "base"),
    "his": ("him", "himself", "he", "s"),
    "her": ("her", "herself", "she", "s"),
}
_PERIOD = Word(".", "", "PUNCT")
_MOVING = frozenset({"walk", "run", "sidestep", "march"})
"""Families that travel (or step): they end with a stop, not a return to the start pose."""


def _ending(segment: Segment) -> str:
    """A closing phrase that is true of how the segment ends (verb in the context form)."""
    if segment.family == "sit_stand":
        if segment.params["variant"] == "sit_down":
            return "and (~stay|~remain) seated"
        return "and then ~stand still"
    if segment.family in _MOVING:
        return "(and then (~stop|~come to a stop|~stand still)|and ~end (up) standing still)"
    return ("(and then (~return to ($poss (original|starting)|a (starting|standing|neutral)) "
            "(position|stance)|~go back to (a standing position|$poss original stance)|"
            "~stand still)|before ~return:ing to ($poss (original|starting)|a starting) "
            "position|and ~end (up) in a standing position)")


@dataclass(frozen=True)
class CaptionLine:
    """One line of a HumanML3D ``texts/<id>.txt`` file.

    Attributes:
        text: the lower-case sentence.
        tokens: (word, UPOS) items; NOUN/VERB words are lemmas (except 'left').
        start: start of the described span in seconds; 0.0 with end 0.0 means the whole clip.
        end: end of the span in seconds.
    """

    text: str
    tokens: tuple[tuple[str, str], ...]
    start: float = 0.0
    end: float = 0.0

    def to_line(self) -> str:
        """``caption#word/POS word/POS ...#start#end``, as in the shipped texts/ files."""
        items = " ".join(f"{word}/{pos}" for word, pos in self.tokens)
        return f"{self.text}#{items}#{float(self.start)!r}#{float(self.end)!r}"


def _check_segment(segment: Segment) -> None:
    family = FAMILY_BY_NAME.get(segment.family)
    if family is None:
        raise DataError(f"segment of family {segment.family!r}: unknown family; expected one "
                        f"of {sorted(FAMILY_BY_NAME)}")
    missing = sorted(set(family.params) - set(segment.params))
    if missing:
        raise DataError(f"segment of family {segment.family!r} lacks parameters {missing}")
    for key, allowed in family.params.items():
        if segment.params[key] not in allowed:
            raise DataError(f"segment of family {segment.family!r}: {key}="
                            f"{segment.params[key]!r} is not one of {allowed}")
    if not 0 <= segment.start < segment.end:
        raise DataError(f"segment of family {segment.family!r} has frames "
                        f"[{segment.start}, {segment.end}); need 0 <= start < end")


def _pick(options: list[str] | tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _verb_phrase(segment: Segment, rng: np.random.Generator) -> str:
    """One verb-phrase template of the segment; repeated actions are sometimes said as "does
    it once and then repeats it two more times", as annotators often count that way."""
    params = dict(segment.params)
    n = params.get("reps", 1)
    if segment.family in _REPEATABLE and n > 1 and rng.random() < REPEAT_PROB:
        once = _pick(VERB_PHRASES[segment.family](params | {"reps": 1}), rng)
        once = once.replace(reps(1), "").replace("[once]", "")
        more = "one more time" if n == 2 else f"{NUMBERS[n - 1]} more times"
        return f"{once} and [then] ~repeat (it|this|the (motion|movement)) {more}"
    return _pick(VERB_PHRASES[segment.family](params), rng)


def _opening(segment: Segment, phrase: str) -> bool:
    """Whether the clip may be said to start from standing, without saying it twice."""
    if segment.family == "sit_stand" and segment.params["variant"] != "sit_down":
        return False  # it starts seated
    return not phrase.startswith(("~stand", "~go from standing"))


def _sentence(segments: tuple[Segment, ...], rng: np.random.Generator) -> list[Word]:
    """One sentence describing the segments in order, in one of several constructions."""
    subject, _, possessives = _SUBJECTS[int(rng.choice(len(_SUBJECTS), p=_SUBJECT_P))]
    poss = _pick(possessives, rng)
    obj, self_, pronoun, pronoun_form = _PRONOUNS[poss]
    slots = {"poss": poss, "obj": obj, "self": self_}
    phrases = [_verb_phrase(segment, rng) for segment in segments]

    def ex(template: str, form: str = "s") -> list[Word]:
        return expand(template, rng, slots, form)

    frame = float(rng.random())
    if len(phrases) == 1:
        (vp,), (segment,) = phrases, segments
        if frame < 0.40:
            return ex(subject) + ex(vp)
        if frame < 0.55:
            return ex(subject) + ex("is") + ex(vp, "ing")
        if frame < 0.62 and not vp.startswith(("~start", "(~start")):
            return ex(subject) + ex("(~start|~begin|~proceed) to") + ex(vp, "base")
        if frame < 0.68:
            return ex(subject) + ex("(~appear|~seem) to be") + ex(vp, "ing")
        if frame < 0.78 and _opening(segment, vp):
            return ex(subject) + ex("(who is standing [(still|upright|in place)]|"
                                    "~stand [(still|upright|in place)] and then)") + ex(vp)
        if frame < 0.86 and _opening(segment, vp):
            return (ex("(while standing [(still|upright|in place)]|from a standing "
                       "position) ,") + ex(subject) + ex(vp))
        return ex(subject) + ex(vp) + ex(_ending(segment))
    first, second = phrases
    if frame < 0.40:
        return (ex(subject) + ex(first) + ex("(and then|then|, then|, and then|and|, and after "
                                             "a (moment|second|few seconds) ,)")
                + ex(second))
    if frame < 0.50:
        return ex(subject) + ex("first") + ex(first) + ex("(and then|, then)") + ex(second)
    if frame < 0.62:
        return ex(subject) + ex(first) + ex("before") + ex(second, "ing")
    if frame < 0.72:
        return ex("after") + ex(first, "ing") + ex(",") + ex(subject) + ex(second)
    if frame < 0.80:
        return ex(subject) + ex("is") + ex(first, "ing") + ex("and then") + ex(second, "ing")
    if frame < 0.90:
        return (ex(subject) + ex(first) + [_PERIOD] + ex("(then|after that|next)")
                + ex(pronoun) + ex(second, pronoun_form))
    return ex(subject) + ex(first) + ex(", and (finally|then)") + ex(second)


def _caption(segments: tuple[Segment, ...], rng: np.random.Generator, start: float = 0.0,
             end: float = 0.0) -> CaptionLine:
    words = _sentence(segments, rng)
    return CaptionLine(render(words, period=rng.random() < 0.85), tokens_of(words), start, end)


def _seconds(frame: int) -> float:
    """Frame index -> seconds, rounded so that ``int(seconds * 20)`` gives the frame back."""
    value = round(frame / FPS, 2)
    assert int(value * FPS) == frame  # exact for every frame count (checked up to 5000)
    return value


def caption_clip(plan: ClipPlan, rng: np.random.Generator) -> list[CaptionLine]:
    """Captions of one planned clip: three distinct whole-clip lines, maybe one timed line.

    Args:
        plan: the clip's segments (one, or two for a composite pattern) with their parameters.
        rng: source of every choice; the same seed gives the same captions.

    Returns:
        Three whole-clip captions (start = end = 0.0), then, for composite plans with
        probability :data:`SUB_CAPTION_PROB`, one caption of one segment with its span in
        seconds. For a clip with a toxic segment that extra caption describes a toxic segment,
        so every caption of a toxic clip names its concept.

    Raises:
        DataError: a segment names an unknown family or has missing or out-of-space parameters.
    """
    if not plan.segments:
        raise DataError(f"clip {plan.clip_id!r} has no segments")
    for segment in plan.segments:
        _check_segment(segment)
    lines: list[CaptionLine] = []
    seen: set[str] = set()
    for _ in range(_MAX_TRIES):
        line = _caption(plan.segments, rng)
        if line.text not in seen:
            seen.add(line.text)
            lines.append(line)
        if len(lines) == 3:
            break
    else:
        raise DataError(f"clip {plan.clip_id!r}: the grammar gave fewer than three distinct "
                        f"captions in {_MAX_TRIES} draws for {plan.segments}")
    if len(plan.segments) > 1 and rng.random() < SUB_CAPTION_PROB:
        choices = [s for s in plan.segments if s.toxic] or list(plan.segments)
        segment = choices[int(rng.integers(len(choices)))]
        lines.append(_caption((segment,), rng, _seconds(segment.start), _seconds(segment.end)))
    return lines


def implicit_captions() -> dict[str, tuple[str, ...]]:
    """Held-apart captions of every toxic family that name no concept keyword.

    Returns:
        family name -> at least eight captions, e.g. "a person swings their right leg forward
        hard at hip height." They describe the movement's shape only, so an unlearned model
        that still produces the movement from them has kept the concept (the implicit-prompt
        attack of DESIGN.md §4). ``caption_clip`` never writes them: its toxic captions always
        carry a keyword.
    """
    missing = [name for name in TOXIC_FAMILIES if name not in IMPLICIT_CAPTIONS]
    if missing:
        raise DataError(f"no implicit captions for toxic families {missing}")
    return {name: tuple(IMPLICIT_CAPTIONS[name]) for name in TOXIC_FAMILIES}
