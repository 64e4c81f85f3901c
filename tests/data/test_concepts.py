"""Concepts: both matching modes, user concept files, detoxification, ConceptSplit counts."""

from __future__ import annotations

import json

import pytest

from hmu_core.data.concepts import (
    BUILTIN_CONCEPTS,
    Concept,
    ConceptSplit,
    MatchMode,
    caption_is_toxic,
    detoxify,
    inflections,
    load_concepts,
    matched_keywords,
    resolve_concepts,
)
from hmu_core.errors import ConfigError

VIOLENCE = BUILTIN_CONCEPTS["violence"]
OFFICIAL, WORD = MatchMode.OFFICIAL, MatchMode.WORD


def test_builtin_lists_match_the_official_code():
    assert VIOLENCE.keywords == (
        "kick", "punch", "hit", "beat", "boxe", "boxing", "jab", "uppercut", "hook")
    assert BUILTIN_CONCEPTS["weapons"].keywords == ("gun", "shoot", "sword", "knife", "stab")
    assert BUILTIN_CONCEPTS["martial_arts"].keywords == ("kung fu", "taekwondo", "karate")
    motionx = BUILTIN_CONCEPTS["violence_motionx"].keywords
    assert set(motionx) == set(VIOLENCE.keywords) | {
        "gun", "shoot", "sword", "knife", "stab", "kung fu", "taekwondo", "karate"}
    assert set(BUILTIN_CONCEPTS["punch_jab_box_hit_beat"].keywords) == {
        "punch", "jab", "boxe", "boxing", "hit", "beat"}
    assert MatchMode("official") is OFFICIAL and isinstance(OFFICIAL, str)


@pytest.mark.parametrize(
    ("caption", "official", "word"),
    [
        ("a man kicks a ball", ("kick",), ("kick",)),
        ("he is kicking and punched twice", ("kick", "punch"), ("kick", "punch")),
        # substring quirks of the official grep
        ("a person in a white shirt", ("hit",), ()),
        ("someone walks to the beats", ("beat",), ("beat",)),
        ("a kickboxing stance", ("kick", "boxing"), ()),
        # case: the official grep is case-sensitive
        ("Kicks high", (), ("kick",)),
        ("a person jabbing and stabbed", ("jab",), ("jab",)),
        ("puts the boxes down", ("boxe",), ("boxe",)),
        ("boxing then boxed", ("boxe", "boxing"), ("boxe", "boxing")),
    ],
)
def test_match_modes(caption, official, word):
    assert matched_keywords(caption, VIOLENCE, OFFICIAL) == official
    assert matched_keywords(caption, VIOLENCE, WORD) == word


def test_official_mode_searches_the_whole_line_word_mode_only_the_sentence():
    line = "Kicks high#kick/VERB high/ADV#0.0#0.0"
    assert matched_keywords(line, VIOLENCE, OFFICIAL) == ("kick",)  # lemma in the tokens
    assert matched_keywords("a white shirt#a/DET white/ADJ#0.0#0.0", VIOLENCE, WORD) == ()


def test_inflections():
    assert {"kick", "kicks", "kicked", "kicking", "kicker"} <= set(inflections("kick"))
    assert {"jabbed", "jabbing"} <= set(inflections("jab"))
    assert {"boxes", "boxed", "boxer", "boxing"} <= set(inflections("boxe"))
    assert "punches" in inflections("punch")
    assert {"shot", "shooting"} <= set(inflections("shoot"))
    assert "kickstand" not in inflections("kick")


def test_multiword_and_weapon_keywords():
    arts = BUILTIN_CONCEPTS["martial_arts"]
    assert matched_keywords("does some Kung-Fu moves", arts, WORD) == ("kung fu",)
    assert matched_keywords("does some kung fu moves", arts, OFFICIAL) == ("kung fu",)
    weapons = BUILTIN_CONCEPTS["weapons"]
    assert matched_keywords("he shot a gun then stabs", weapons, WORD) == ("gun", "shoot", "stab")
    assert caption_is_toxic("he was shooting", [weapons], WORD)
    assert not caption_is_toxic("a person walks", [weapons, VIOLENCE], WORD)


def test_detoxify_removes_every_toxic_word():
    text = "a man kicks the bag, then punches and jabs with his left hand."
    assert detoxify(text, [VIOLENCE]) == "a man the bag, then and with his left hand."
    assert detoxify("kicking", [VIOLENCE]) == ""
    assert detoxify("a man in white kicks", [VIOLENCE], OFFICIAL) == "a man in"
    assert detoxify("a man in white kicks", [VIOLENCE], WORD) == "a man in white"
    clean = detoxify("he shoots a gun and does kung fu", resolve_concepts(["violence_motionx"]))
    assert clean == "he a and does"
    for kw in VIOLENCE.keywords:
        assert not matched_keywords(detoxify(f"they {kw} it", [VIOLENCE]), VIOLENCE, WORD)


def test_user_concepts_toml_and_json(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text(
        '[concepts.fight]\nkeywords = ["fight", "brawl"]\nmin_occurrences = 2\n'
        '[concepts.dance]\nkeywords = ["dance"]\n')
    loaded = load_concepts(toml)
    assert loaded["fight"] == Concept("fight", ("fight", "brawl"), 2)
    assert loaded["dance"].min_occurrences == 1
    js = tmp_path / "mine.json"
    js.write_text(json.dumps({"fight": ["fight"], "kick": {"keywords": ["kick", "stomp"]}}))
    assert [c.name for c in resolve_concepts([str(js)])] == ["fight", "kick"]
    # a file's concepts join the namespace and override built-ins of the same name
    chosen = resolve_concepts([str(js), "kick", "violence"])
    assert [c.keywords for c in chosen] == [("kick", "stomp"), VIOLENCE.keywords]


def test_bad_concepts(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown concept.*nope.*known: .*violence"):
        resolve_concepts(["nope"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[concepts.x]\nkeywords = 3\n")
    with pytest.raises(ConfigError, match="'keywords' must be a list"):
        load_concepts(bad)
    bad.write_text("not = [toml")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        load_concepts(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_concepts(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="min_occurrences"):
        Concept("x", ("a",), 0)
    with pytest.raises(ConfigError, match="file name"):
        Concept("a b", ("a",))


def test_concept_split_counts_and_min_occurrences():
    captions = {
        "a": ["a man kicks", "he kicks again"],
        "b": ["a person in white"],
        "c": ["walks", "punches once"],
        "d": ["waves"],
    }
    result = ConceptSplit([VIOLENCE], OFFICIAL).split(captions)
    assert result.forget_ids == ("a", "b", "c")
    assert result.retain_ids == ("d",)
    kw = result.keyword_counts["violence"]
    assert (kw["kick"].matching, kw["kick"].considered) == (1, 4)
    assert kw["hit"].matching == 1 and kw["jab"].matching == 0
    assert result.concept_counts["violence"].share == 0.75
    word = ConceptSplit([VIOLENCE], WORD).split(captions)
    assert word.forget_ids == ("a", "c")
    twice = ConceptSplit([VIOLENCE], OFFICIAL, min_occurrences=2).split(captions)
    assert twice.forget_ids == ("a",)
    two = ConceptSplit(resolve_concepts(["kick", "punch"]), WORD).split(captions)
    assert two.concept_forget == {"kick": ("a",), "punch": ("c",)}
    assert two.forget_ids == ("a", "c") and two.total.matching == 2
    with pytest.raises(ConfigError, match="match mode"):
        ConceptSplit([VIOLENCE], "fuzzy")
