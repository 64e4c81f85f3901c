"""Tests of the synthetic caption grammar: format, truth to the plan, keywords, realism."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from hmu_core.data.concepts import BUILTIN_CONCEPTS, MatchMode, caption_is_toxic
from hmu_core.errors import ConfigError, DataError
from hmu_core.synth.caption_grammar import expand, parse
from hmu_core.synth.captions import VERB_PHRASES, CaptionLine, caption_clip, implicit_captions
from hmu_core.synth.families import (
    COMPOSITE_PATTERNS,
    FAMILIES,
    FAMILY_BY_NAME,
    TOXIC_FAMILIES,
    ClipPlan,
    Segment,
)

REPO = Path(__file__).resolve().parents[2]

UPOS = {"ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "SCONJ", "VERB", "X"}
VIOLENCE_MOTIONX = [BUILTIN_CONCEPTS["violence_motionx"]]


def official_match(line: str) -> bool:
    """The official HMU rule: case-sensitive substring over the whole line."""
    return caption_is_toxic(line, VIOLENCE_MOTIONX, MatchMode.OFFICIAL)


def word_match(line: str) -> bool:
    """Whole words with inflections, over the sentence."""
    return caption_is_toxic(line, VIOLENCE_MOTIONX, MatchMode.WORD)


def sample_plan(rng: np.random.Generator, names: tuple[str, ...], index: int = 0) -> ClipPlan:
    segments, frame = [], 0
    for name in names:
        family = FAMILY_BY_NAME[name]
        length = int(rng.integers(int(family.seconds[0] * 20), int(family.seconds[1] * 20) + 1))
        segments.append(Segment(name, frame, frame + length, family.sample_params(rng)))
        frame += length
    return ClipPlan(f"T{index:05d}", tuple(segments), 1.0, index)


def random_plan(rng: np.random.Generator, index: int = 0) -> ClipPlan:
    if rng.random() < 0.35:
        names = COMPOSITE_PATTERNS[int(rng.integers(len(COMPOSITE_PATTERNS)))]
    else:
        names = (FAMILIES[int(rng.integers(len(FAMILIES)))].name,)
    return sample_plan(rng, names, index)


@pytest.fixture(scope="module")
def sampled() -> list[tuple[ClipPlan, list[CaptionLine]]]:
    rng = np.random.default_rng(1234)
    plans = [random_plan(rng, i) for i in range(1500)]
    return [(plan, caption_clip(plan, rng)) for plan in plans]


def parse_line(line: str) -> tuple[str, list[tuple[str, str]], float, float]:
    caption, tokens, start, end = line.split("#")
    items = [tuple(item.split("/")) for item in tokens.split(" ")]
    return caption, items, float(start), float(end)


def test_to_line_round_trip(sampled):
    for _, lines in sampled[:300]:
        for line in lines:
            caption, items, start, end = parse_line(line.to_line())
            assert caption == line.text
            assert tuple(items) == line.tokens
            assert (start, end) == (line.start, line.end)
            assert all(len(i) == 2 and i[0].isalpha() and i[1] in UPOS for i in items)
            assert caption == caption.lower() and "#" not in caption


def test_whole_clip_line_format_matches_shipped_files():
    line = CaptionLine("a person walks.", (("a", "DET"), ("person", "NOUN"), ("walk", "VERB")))
    assert line.to_line() == "a person walks.#a/DET person/NOUN walk/VERB#0.0#0.0"
    assert CaptionLine("x", (("x", "X"),), 1.0, 4.0).to_line().endswith("#1.0#4.0")


def test_lines_look_like_real_lines(shared_data_dir, sampled):
    """Our lines and the shipped ones split the same way and write spans the same way."""
    with gzip.open(shared_data_dir / "humanml3d_texts.jsonl.gz", "rt", encoding="utf-8") as f:
        real = [line for _, raw in zip(range(200), f, strict=False)
                for line in json.loads(raw)["lines"]]
    real_spans = {tuple(line.split("#")[2:]) for line in real}
    assert ("0.0", "0.0") in real_spans
    for line in real[:50]:
        caption, items, _, _ = parse_line(line)
        assert caption and all(len(item) == 2 for item in items)
    ours = [line.to_line() for _, lines in sampled[:200] for line in lines]
    assert all(line.count("#") == 3 for line in ours)
    assert all(re.fullmatch(r"\d+\.\d+", field) for line in ours for field in line.split("#")[2:])


def test_tokens_follow_the_humanml3d_convention(sampled):
    for _, lines in sampled[:300]:
        for line in lines:
            surfaces = [w for w in re.findall(r"[a-z]+", line.text)]
            assert len(surfaces) == len(line.tokens)
            for surface, (token, pos) in zip(surfaces, line.tokens, strict=True):
                if pos in ("NOUN", "VERB") and surface != "left":
                    continue  # lemma
                assert token == surface, (line.text, surface, token, pos)
    kick = caption_clip(sample_plan(np.random.default_rng(0), ("kick",)),
                        np.random.default_rng(0))
    assert all(("kick", "VERB") in line.tokens or ("kick", "NOUN") in line.tokens
               for line in kick)


def test_three_distinct_whole_clip_captions(sampled):
    for plan, lines in sampled:
        whole = [line for line in lines if (line.start, line.end) == (0.0, 0.0)]
        assert len(whole) == 3 and len({line.text for line in whole}) == 3
        assert len(lines) in (3, 4)
        if len(plan.segments) == 1:
            assert len(lines) == 3


def test_timed_caption_covers_one_segment(sampled):
    timed = [(plan, lines[3]) for plan, lines in sampled if len(lines) == 4]
    assert len(timed) > 50
    for plan, line in timed:
        spans = [(s.start, s.end) for s in plan.segments]
        assert (int(line.start * 20), int(line.end * 20)) in spans
        if plan.toxic:
            assert official_match(line.text)


def _single(family: str, **params) -> list[CaptionLine]:
    rng = np.random.default_rng(sum(map(ord, family + str(sorted(params.items())))))
    full = FAMILY_BY_NAME[family].sample_params(rng) | params
    plan = ClipPlan("P", (Segment(family, 0, 80, full),), 1.0, 0)
    return caption_clip(plan, rng)


@pytest.mark.parametrize("family", [f.name for f in FAMILIES if "side" in f.params])
def test_side_is_said_and_never_contradicted(family):
    for side in ("left", "right"):
        for seed in range(25):
            rng = np.random.default_rng(seed)
            params = FAMILY_BY_NAME[family].sample_params(rng) | {"side": side}
            if family == "raise_arms" and params["variant"] != "one_up":
                continue  # both arms: the side is not part of the motion
            if family == "shoot" and params["grip"] == "two_hands":
                continue
            plan = ClipPlan("P", (Segment(family, 0, 80, params),), 1.0, 0)
            other = "right" if side == "left" else "left"
            for line in caption_clip(plan, rng):
                words = re.findall(r"[a-z]+", line.text)
                assert side in words and other not in words, line.text


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("reps", 2, r"\b(twice|two|couple|another|one more time)\b"),
    ("reps", 3, r"\bthree\b|two more times"),
    ("reps", 4, r"\bfour\b|three more times"),
])
def test_repetitions_in_words(key, value, expected):
    for family in ("kick", "punch", "overhead_strike", "squat", "wave"):
        if value not in FAMILY_BY_NAME[family].params[key]:
            continue
        for seed in range(40):
            rng = np.random.default_rng(seed)
            params = FAMILY_BY_NAME[family].sample_params(rng) | {key: value}
            plan = ClipPlan("P", (Segment(family, 0, 80, params),), 1.0, 0)
            for line in caption_clip(plan, rng):
                assert re.search(expected, line.text), line.text
                assert "once" not in line.text


def test_speed_and_direction_are_true():
    for line in _single("walk", direction="backward", speed="slow"):
        assert re.search(r"backwards?|\bback\b|backs up|backing up", line.text), line.text
        assert not re.search(r"forwards?\b|ahead", line.text), line.text
        assert re.search(r"\bslow|careful|leisure|gentl", line.text), line.text
        assert not re.search(r"quick|fast|rapid|brisk|hurried", line.text), line.text
    for line in _single("walk", direction="circle", speed="fast"):
        assert "circle" in line.text or "circular" in line.text
        assert not re.search(r"\bslow", line.text)
    for line in _single("run", pace="jog", direction="turn_left"):
        assert "jog" in line.text and "left" in line.text and "right" not in line.text


def test_composite_describes_both_segments_in_order():
    rng = np.random.default_rng(7)
    for _ in range(40):
        plan = sample_plan(rng, ("walk", "kick"))
        for line in caption_clip(plan, rng)[:3]:
            text = line.text
            walk = re.search(r"\bwalk|\bstep|\bmov|\bback|\bcircl|\bstrid", text)
            kick = re.search(r"\bkick", text)
            assert walk and kick, text
            if not text.startswith("after"):
                assert walk.start() < kick.start(), text


def test_keywords_in_every_toxic_caption_and_none_in_safe(sampled):
    rng = np.random.default_rng(99)
    extra = [random_plan(rng, i) for i in range(1500)]
    pairs = sampled + [(plan, caption_clip(plan, rng)) for plan in extra]
    toxic_lines = safe_lines = 0
    for plan, lines in pairs:
        for line in lines:
            for text in (line.text, line.to_line()):
                assert official_match(text) == plan.toxic, (plan.segments, text)
                assert word_match(text) == plan.toxic, (plan.segments, text)
            toxic_lines += plan.toxic
            safe_lines += not plan.toxic
    assert toxic_lines > 1000 and safe_lines > 1000


def test_every_toxic_family_uses_a_keyword_of_its_own_kind():
    own = {"kick": r"kick", "punch": r"punch|jab|box|hook", "uppercut": r"uppercut",
           "overhead_strike": r"\bhit|\bbeat", "stab": r"stab|knife|sword",
           "shoot": r"shoot|gun", "knee_elbow_strike": r"\bhit"}
    rng = np.random.default_rng(5)
    for family in TOXIC_FAMILIES:
        for _ in range(100):
            for line in caption_clip(sample_plan(rng, (family,)), rng):
                assert re.search(own[family], line.text), (family, line.text)


def test_implicit_captions_are_keyword_free_and_held_apart(sampled):
    implicit = implicit_captions()
    assert set(implicit) == set(TOXIC_FAMILIES)
    produced = {line.text for _, lines in sampled for line in lines}
    for captions in implicit.values():
        assert len(captions) >= 8 and len(set(captions)) == len(captions)
        for caption in captions:
            assert not official_match(caption) and not word_match(caption), caption
            assert caption not in produced and caption == caption.lower()


def test_determinism():
    plan = sample_plan(np.random.default_rng(3), ("squat", "punch"))
    a = caption_clip(plan, np.random.default_rng(11))
    b = caption_clip(plan, np.random.default_rng(11))
    assert a == b
    texts = {tuple(line.text for line in caption_clip(plan, np.random.default_rng(s)))
             for s in range(10)}
    assert len(texts) > 1


def test_every_template_parses_for_every_parameter_combination():
    for family in FAMILIES:
        keys = list(family.params)
        for values in itertools.product(*family.params.values()):
            templates = VERB_PHRASES[family.name](dict(zip(keys, values, strict=True)))
            assert templates
            for template in templates:
                parse(template)


def test_bad_input_raises():
    with pytest.raises(DataError, match="unknown family"):
        caption_clip(ClipPlan("X", (Segment("fly", 0, 10, {}),), 1.0, 0),
                     np.random.default_rng(0))
    with pytest.raises(DataError, match="lacks parameters"):
        caption_clip(ClipPlan("X", (Segment("kick", 0, 10, {"side": "left"}),), 1.0, 0),
                     np.random.default_rng(0))
    params = FAMILY_BY_NAME["kick"].sample_params(np.random.default_rng(0)) | {"side": "up"}
    with pytest.raises(DataError, match="side='up'"):
        caption_clip(ClipPlan("X", (Segment("kick", 0, 10, params),), 1.0, 0),
                     np.random.default_rng(0))
    with pytest.raises(ConfigError, match="not in the caption lexicon"):
        parse("a person zorbles")
    with pytest.raises(ConfigError, match="unbalanced"):
        parse("a person )")
    with pytest.raises(ConfigError, match="no slot"):
        expand("$nothing", np.random.default_rng(0))


def _load_vocab_script():
    spec = importlib.util.spec_from_file_location("caption_vocab",
                                                  REPO / "scripts" / "caption_vocab.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def test_vocabulary_is_realistic(shared_data_dir):
    """The realism targets hold on a 1,200-clip planned set, through the script's own path."""
    vocab = _load_vocab_script()
    real = vocab.load_real_captions(shared_data_dir)
    assert len(real) > 40000
    synthetic = vocab.synthetic_captions(1200, seed=3)
    figures = vocab.vocab_figures(real, synthetic)
    assert len(figures.top_words) == 500
    assert not set(figures.top_words) & vocab.STOP_WORDS
    assert figures.coverage >= 0.60, figures.missed_top[:50]
    assert figures.novelty < 0.10, figures.novel_types


def test_vocab_figures_count_what_they_say():
    vocab = _load_vocab_script()
    real = ["a person walks forward.", "a person walks back and kicks.", "the man runs"]
    figures = vocab.vocab_figures(real, ["a person jogs forward."], top_n=3)
    assert figures.top_words == ("person", "walks", "forward")
    assert figures.missed_top == ("walks",)
    assert figures.coverage == pytest.approx(2 / 3)
    assert figures.novel_types == ("jogs",)
    assert figures.novelty == pytest.approx(1 / 4)
