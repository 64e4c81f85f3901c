"""Verb-phrase templates of the toxic action families, true to the segment's parameters.

Each family maps a parameter dict to alternative verb-phrase templates (syntax in
:mod:`hmu_core.synth.caption_grammar`). Parameters are written into the templates as words, so
every alternative says the same thing: the side, the count, the speed, the height; alternatives
differ in the words and constructions real annotators use for the same movement (synonyms,
body-part paraphrases, "does a ... kick" next to "kicks"). Templates of toxic families always
contain a concept keyword in a plain form (kick, punch, jab, hook, uppercut, hit, beat, stab,
knife, sword, shoot, gun); templates of safe families never do.

Slots filled per sentence: ``$poss`` (their/his/her), ``$obj`` (them/him/her), ``$self``
(themselves/himself/herself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hmu_core.synth.caption_grammar import count, reps, speed_adj
from hmu_core.synth.caption_grammar import speed as _plain_speed


def speed(value: str) -> str:
    """The speed of a strike: the common adverbials, plus "suddenly" for fast ones."""
    if value == "fast":
        return f"({_plain_speed(value)}|suddenly|in quick movements)"
    return _plain_speed(value)


def _kick(p: dict[str, Any]) -> list[str]:
    s, r, v, a = p["side"], reps(p["reps"]), speed(p["speed"]), speed_adj(p["speed"])
    h = {"low": "(low|at knee height|at knee level|toward the ground|at a low height)",
         "mid": "[(at waist height|at hip height|at waist level|at hip level)]",
         "high": "(high|up high|at head height|at head level|up to head height|above waist "
                 "height)"}[p["height"]]
    hn = {"low": "low", "mid": "", "high": "high"}[p["height"]]
    leg = f"(with|using) $poss {s} (leg|foot)"
    kicks = count(p["reps"], "kick", "kicks", f"{a} {hn} {s} [(leg|foot)]")
    return [
        f"~kick [(forward|out|outward|in front of $obj|into the air)] {h} {leg} {r} {v}",
        f"~kick {v} {leg} {h} {r}",
        f"~lift $poss {s} (leg|knee) and ~kick (forward|out) {h} {r} {v}",
        f"(~do|~perform|~throw) {kicks} [(in the air|in front of $obj)]",
        f"~make a kicking (motion|movement) {leg} {h} {r} {v}",
        f"~stand on one leg and ~kick {h} {leg} {r} {v}",
        f"~swing $poss {s} leg (forward|up) (in|into) {count(p['reps'], 'kick', 'kicks', a)}",
        f"~kick (something|someone) {h} {leg} {r} {v}",
        f"~balance on $poss (other|opposite) (leg|foot) and ~kick {h} {leg} {r}",
        f"~kick {h} {leg} {r} {v} , balancing on the opposite leg",
        f"~shift $poss weight (onto|to) one leg and ~kick {h} {leg} {r} {v}",
        f"~get ready and ~kick {leg} {h} {r} {v}",
        f"~stand with $poss knees [slightly] bent , then ~kick {h} {leg} {r}",
        f"~pretend to ~kick:base (something|someone) {leg} {h} {r}",
        f"~kick {leg} {r} {v} , like (a fighter|someone in a fight)",
        f"~kick {leg} {r} {v} {h} , then ~put $poss {s} (leg|foot) back down",
    ] + ([f"~kick {leg} higher than $poss waist {r} {v}"] if p["height"] == "high" else [])


def _punch(p: dict[str, Any]) -> list[str]:
    side = p["side"]
    r, v, a = reps(p["reps"]), speed(p["speed"]), speed_adj(p["speed"])
    if side == "both":
        hand = ("(with both (hands|fists|arms)|with (alternating|each) (hands|fists)|"
                "alternating (between left and right|left and right|hands))")
        adj = "[(left and right|alternating)]"
    else:
        hand = f"(with|using) $poss {side} (hand|fist|arm)"
        adj = side
    single = {"straight": "punch", "jab": "jab", "hook": "hook"}[p["style"]]
    as_if = "~jab:ing" if p["style"] == "jab" else "~box:ing"
    if p["style"] == "straight":
        verb = "~punch (forward|straight|straight ahead|straight forward|out in front of $obj)"
        noun = count(p["reps"], "punch", "punches", f"{a} {adj} [straight]")
    elif p["style"] == "jab":
        verb = "~jab [(forward|straight ahead|out)]"
        noun = count(p["reps"], "jab", "jabs", f"{a} {adj}")
    else:
        verb = "~punch (in a hook motion|in a hook|sideways in a hook|with a hook)"
        noun = count(p["reps"], "hook", "hooks", f"{a} {adj}")
    return [
        f"{verb} {hand} {r} {v}",
        f"(~throw|~do|~perform) {noun} [(at shoulder height|at face height|in front of $obj)]",
        f"~raise $poss (fists|hands) (up|to $poss face|in front of $poss face) and {verb} {hand} "
        f"{r}",
        f"~stand in a (boxing|fighting) stance and {verb} {hand} {r} {v}",
        f"~make a punching (motion|movement) {hand} {r} {v} [as if {as_if}]",
        f"{verb} {hand} {r} {v} as if (boxing|fighting (someone|an opponent))",
        f"~use {f'$poss {side} hand' if side != 'both' else 'both hands'} to ~throw:base {noun}",
        f"~hold $poss fists near $poss face and {verb} {hand} {r} {v}",
        f"~get into a fighting stance , with $poss elbows bent , and {verb} {hand} {r}",
        f"{verb} {hand} {r} {v} , (twisting|rotating) $poss torso",
        f"~pull $poss (fist|arm) back and {verb} {hand} {r} {v}",
        f"~pretend to ~punch:base (someone|something) {hand} {r} {v}",
        f"~punch {hand} {r} {v} like a boxer",
    ] + ([f"~throw {noun} in punching motions"] if p["reps"] > 1 else []) + (
        [f"~throw one {a} {adj} {single} and then another {hand}"]
        if p["reps"] == 2 and side != "both" else [])


def _uppercut(p: dict[str, Any]) -> list[str]:
    s, r, v, a = p["side"], reps(p["reps"]), speed(p["speed"]), speed_adj(p["speed"])
    hand = f"(with|using) $poss {s} (hand|fist|arm)"
    cuts = count(p["reps"], "uppercut", "uppercuts", f"{a} {s}")
    return [
        f"(~throw|~do|~perform) {cuts} [in front of $obj]",
        f"(~throw|~do) {count(p['reps'], 'uppercut', 'uppercuts', a)} {hand} {v}",
        f"~punch (upward|upwards|up) in an uppercut [(motion|movement)] {hand} {r} {v}",
        f"~swing $poss {s} fist (upward|upwards|up) in an uppercut {r} {v}",
        f"~bend $poss knees and ~throw {cuts} {v}",
        f"~bring $poss {s} (fist|hand) up from $poss waist in an uppercut {r} {v}",
        f"~swing $poss {s} forearm (upward|upwards|up) in an uppercut {r} {v}",
        f"~pull $poss {s} fist back and ~throw {cuts}",
        f"~get into a fighting stance and ~throw {cuts} {v}",
    ]


def _overhead(p: dict[str, Any]) -> list[str]:
    s, r, v = p["side"], reps(p["reps"]), speed(p["speed"])
    target = {"ground": "(the ground|the floor|the ground in front of $obj)",
              "front": "(something in front of $obj|an (object|item) in front of $obj|"
                       "something (ahead|in front))"}[p["target"]]
    hand = f"(with|using) $poss {s} (hand|fist|arm)"
    return [
        f"~raise $poss {s} (arm|hand) (above|over) $poss head and ~hit {target} {r} {v}",
        f"~hit {target} {hand} from (above|over) $poss head {r} {v}",
        f"~beat (on|down on) {target} {hand} {r} {v}",
        f"~lift $poss {s} arm (up|high) and ~hit (down|downward) (on|at) {target} {r} {v}",
        f"~swing $poss {s} (arm|fist) down (hard|with force) to ~hit:base {target} {r}",
        f"~hit {target} {r} {v} , (bringing|swinging) $poss {s} arm down from (above|over) "
        "$poss head",
        f"~pretend to ~hit:base {target} {hand} {r} {v}",
        f"~hit {target} {hand} {r} , as if (holding something heavy|holding a (stick|hammer))",
    ]


def _stab(p: dict[str, Any]) -> list[str]:
    s, r, v = p["side"], reps(p["reps"]), speed(p["speed"])
    held = f"(held in|in) $poss {s} hand"
    if p["style"] == "stab":
        return [
            f"~stab (forward|at something|at the air|down|in front of $obj) with a knife "
            f"{held} {r} {v}",
            f"~hold a knife in $poss {s} hand and ~stab (forward|down|at something) {r} {v}",
            f"~stab (forward|at something|at someone) (with|using) $poss {s} hand {r} {v}",
            f"~make a stabbing (motion|movement) with a knife {held} {r} {v}",
            f"~grab a knife with $poss {s} hand and ~stab (forward|at something) {r}",
            f"~stab {r} {v} with $poss {s} (hand|arm) as if holding a knife",
            f"~pretend to ~stab:base (someone|something) with a knife {held} {r} {v}",
            f"~lean forward and ~stab with a knife {held} {r} {v}",
        ]
    return [
        f"~slash (with|using) a (knife|sword) {held} {r} {v}",
        f"~swing a (sword|knife) (across|sideways|in front of $obj) with $poss {s} hand {r} {v}",
        f"~hold a (sword|knife) in $poss {s} hand and ~slash (across|sideways) {r} {v}",
        f"~slash at something with a (sword|knife) {held} {r}",
        f"~make a slashing (motion|movement) with a (sword|knife) {held} {r} {v}",
    ]


def _shoot(p: dict[str, Any]) -> list[str]:
    s, n, v = p["side"], p["shots"], speed(p["speed"])
    r = reps(n)
    if p["grip"] == "two_hands":
        grip = "(with both hands|holding it with both hands|in both hands)"
        hold = "(~hold|~raise|~lift) a gun [up] with both hands"
    else:
        grip = f"(with|in|using) $poss {s} hand"
        hold = f"(~hold|~raise|~lift) a gun [up] (with|in) $poss {s} hand"
    shots = count(n, "shot", "shots")
    arms = "both arms" if p["grip"] == "two_hands" else f"$poss {s} arm"
    return [
        f"~shoot a (gun|pistol|rifle) {grip} {r} {v}",
        f"~aim a gun (forward|ahead|straight ahead|in front of $obj) {grip} and ~shoot {r}",
        f"{hold} and ~shoot (forward|straight ahead|at something) {r} {v}",
        f"~point a gun (forward|ahead|in front of $obj) {grip} and ~fire {shots}",
        f"~fire {shots} from a gun {grip} {v}",
        f"~shoot {r} (with|using) a gun {grip}",
        f"~raise {arms} (forward|up) and ~shoot a gun {r} {v}",
        f"~pretend to ~shoot:base a gun {grip} {r} {v}",
        f"~shoot a gun {grip} {r} , with {arms} raised (in front of $obj|forward)",
        f"~hold a gun {grip} , ~aim and ~shoot {r} {v}",
    ]


def _knee_elbow(p: dict[str, Any]) -> list[str]:
    s, limb, r, v = p["side"], p["limb"], reps(p["reps"]), speed(p["speed"])
    if limb == "knee":
        move = f"(~raise|~lift|~bring|~drive) $poss {s} knee (up|upward|forward)"
    else:
        move = f"(~swing|~bring|~drive) $poss {s} elbow (forward|across|around|sideways)"
    return [
        f"~hit (something|someone|forward|in front of $obj) with $poss {s} {limb} {r} {v}",
        f"{move} and ~hit (something|someone|an object) {r} {v}",
        f"{move} (hard|with force) to ~hit:base (something|someone) {r}",
        f"~use $poss {s} {limb} to ~hit:base (something|someone) in front of $obj {r} {v}",
        f"~hit {r} {v} with $poss {s} {limb} [as if (fighting|in a fight)]",
        f"~grab something in front of $obj and ~hit it with $poss {s} {limb} {r}",
        f"~grab someone in front of $obj and ~hit them with $poss {s} {limb} {r}",
        f"~pretend to ~hit:base someone with $poss {s} {limb} {r} {v}",
        f"~get into a fighting stance and ~hit forward with $poss {s} {limb} {r}",
    ]


TOXIC_PHRASES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "kick": _kick, "punch": _punch, "uppercut": _uppercut, "overhead_strike": _overhead,
    "stab": _stab, "shoot": _shoot, "knee_elbow_strike": _knee_elbow,
}
"""Toxic family name -> function of the segment's parameters returning verb-phrase templates."""
