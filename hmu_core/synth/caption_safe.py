"""Verb-phrase templates of the safe action families, true to the segment's parameters.

Same contract as :mod:`hmu_core.synth.caption_toxic`, with the opposite keyword rule: no
template here may contain a concept keyword, not even as a substring ("white" holds "hit",
"stable" holds "stab", "begun" holds "gun", "boxes" holds "boxe"), because the official matching
mode is a case-sensitive substring test; the caption tests sample thousands of captions to
check it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hmu_core.synth.caption_grammar import NUMBERS, count, reps, speed, speed_adj

_SLOW_WALK = "(slowly|very slowly|at a slow pace|carefully|in a slow manner|leisurely)"
_FAST_WALK = "(quickly|briskly|fast|at a fast pace|at a quick pace|hurriedly|at a brisk pace)"


def _walk_speed(value: str) -> str:
    return {"slow": _SLOW_WALK, "fast": _FAST_WALK,
            "normal": "(||||at a (normal|steady|moderate|regular) pace|casually|normally)"}[value]


def _turn(side: str) -> str:
    """Turning while moving: left is counterclockwise seen from above, right clockwise."""
    spin = ("(counterclockwise|anticlockwise|counter clockwise)" if side == "left"
            else "clockwise")
    return (f"(~turn:ing (to the {side}:NOUN|{side}:ADV|to $poss {side}:NOUN)|"
            f"in a (curve|curved path|{spin} (curve|direction|arc)) to the {side}:NOUN|"
            f"and ~turn (to the {side}:NOUN|{side}:ADV|to $poss {side}:NOUN)|"
            f"and ~turn {spin} (to the {side}:NOUN|to $poss {side}:NOUN)|"
            f"at an angle to the {side}:NOUN|and ~pivot (to the {side}:NOUN|{side}:ADV))")


def _walk(p: dict[str, Any]) -> list[str]:
    v, a = _walk_speed(p["speed"]), speed_adj(p["speed"])
    d = p["direction"]
    if d == "forward":
        where = ("(forward|forwards|straight|straight ahead|straight forward|ahead|"
                 "in a straight line|forward in a straight line|in a straight line forward|"
                 "directly forward|forward , facing ahead)")
        steps = "forward"
    elif d == "backward":
        where = "(backward|backwards|straight back|backwards in a straight line)"
        steps = "(backward|backwards|back)"
    elif d == "circle":
        where = ("(in a circle|around in a circle|in a circular (path|pattern|motion)|"
                 "around in a circular path|in a circle shape|in a complete circle|"
                 "in a circle around the (room|area))")
        steps = "around in a circle"
    else:
        side = d.removeprefix("turn_")
        where = f"[forward] {_turn(side)}"
        steps = f"forward {_turn(side)}"
    extra = {"backward": [f"~back up {v}", f"~walk back {v} , facing forward"],
             "circle": [f"~circle around {v}", f"~walk around {v} in circles"],
             "forward": [f"~walk {where} with long strides {v}"] if p["speed"] == "fast" else [],
             }.get(d, [])
    return [
        f"~walk {where} {v}",
        f"~walk {v} {where}",
        f"~take (a few|several|some) {a} steps {steps}",
        f"~move {where} {v} [on foot]",
        f"~walk {where} {v} with $poss arms (at|by) $poss sides",
        f"~walk {where} {v} (while|whilst) ~swing:ing $poss arms",
        f"~walk {where} {v} and then ~come to a stop",
        f"~walk {where} {v} before ~stop:ing",
        f"~walk {where} {v} (for a few seconds|for several seconds)",
        f"~walk {where} {v} and ~keep walking",
        f"~start to ~walk:base {where} and ~continue {v}",
        *extra,
    ]


def _run(p: dict[str, Any]) -> list[str]:
    verb = "~jog" if p["pace"] == "jog" else "(~run|~sprint)"
    base = "~jog:base" if p["pace"] == "jog" else "(~run:base|~sprint:base)"
    noun = "(jog|light run)" if p["pace"] == "jog" else "run"
    d = p["direction"]
    if d == "forward":
        where = "(forward|forwards|straight ahead|ahead|in a straight line|straight forward)"
    else:
        where = f"[forward] {_turn(d.removeprefix('turn_'))}"
    return [
        f"{verb} {where}",
        f"{verb} {where} [and then (~stop|~slow down|~come to a stop)]",
        f"(~start|~begin) to {base} {where}",
        f"~break into a {noun} {where}",
        f"{verb} {where} (while|whilst) ~swing:ing $poss arms",
        f"~take a few (running|jogging) steps {where}",
    ]


def _jump(p: dict[str, Any]) -> list[str]:
    n, high = p["reps"], p["height"] == "high"
    r = reps(n)
    h = ("(high|up high|very high|as high as possible|high into the air)" if high
         else "(slightly|a little|a bit|low|only a little)")
    ha = "(high|big|large)" if high else "(small|little|low|short)"
    if p["style"] == "in_place":
        where = "(in place|on the spot|up and down|straight up|in the same spot)"
        jumps = count(n, "jump", "jumps", f"{ha} [vertical]")
        hop = "~hop (in place|on the spot|up and down)"
    else:
        where = "(forward|forwards|ahead|a short distance forward)"
        jumps = count(n, "jump", "jumps", f"{ha} [forward]")
        hop = "~hop forward"
    verb = "(~jump|~hop)" if not high else "(~jump|~leap)"
    return [
        f"{verb} {where} {h} {r}",
        f"{verb} {h} {where} {r}",
        f"~jump {where} {r} , landing on both feet",
        f"(~do|~make|~perform) {jumps} [with both feet] [{where}]",
        f"~bend $poss knees and ~jump {where} {h} {r}",
        f"~jump {where} (with|using) both feet {r}",
        f"~jump {r} {where} {h}" if high else f"{hop} {r}",
        f"~jump {where} {h} {r} and ~land on both feet",
        f"~bend $poss legs and ~jump {where} {r}",
        f"~jump {where} {r} , landing on $poss toes",
    ]


def _wave(p: dict[str, Any]) -> list[str]:
    side, n, v = p["side"], p["reps"], speed(p["speed"])
    r = reps(n)
    if side == "both":
        hand = "(both (hands|arms)|$poss (hands|arms))"
        raise_ = "~raise both (hands|arms)"
        raised = "both arms"
    else:
        hand = f"$poss {side} (hand|arm)"
        raise_ = f"(~raise|~lift|~put up) $poss {side} (hand|arm)"
        raised = f"$poss {side} arm"
    return [
        f"~wave [with] {hand} {r} {v}",
        f"{raise_} and ~wave {r} {v}",
        f"~wave {hand} (back and forth|from side to side|in the air) {r} {v}",
        f"{raise_} (up|in the air) and ~wave ({'them' if side == 'both' else 'it'}|hello) {r} {v}",
        f"~make a waving (gesture|motion) with {hand} {r} {v}",
        f"~wave (hello|goodbye) with {hand} {r} {v}",
        f"~stand still and ~wave {hand} {r}",
        f"~wave {hand} {r} {v} while facing forward",
        f"~wave {hand} {r} {v} , with {raised} raised",
    ]


def _clap(p: dict[str, Any]) -> list[str]:
    n, v = p["reps"], speed(p["speed"])
    r = reps(n)
    if p["position"] == "chest":
        where = "(in front of $poss (chest|body)|at chest (height|level)|in front of $obj)"
        lift = "~bring $poss hands together (in front of $poss chest|at chest level)"
    else:
        where = "((above|over) $poss head|(high|up) (above|over) $poss head|in the air)"
        lift = "~raise $poss (hands|arms) (above|over) $poss head and ~clap"
    return [
        f"~clap [$poss hands] [together] {where} {r} {v}",
        f"~clap {r} {where} {v}",
        f"{lift} {r} {v}",
        f"~bring $poss hands together {where} {r} {v}",
        f"~clap $poss hands {r} {v} {where}",
        f"~stand still and ~clap {where} {r}",
        f"~clap along {where} {r} {v}",
        f"~clap {where} {r} {v} , facing forward",
    ] + ([f"~clap with $poss arms raised (above|over) $poss head {r}"]
         if p["position"] == "overhead" else [f"~clap $poss hands near $poss chest {r} {v}"])


def _squat(p: dict[str, Any]) -> list[str]:
    n, v = p["reps"], speed(p["speed"])
    r = reps(n)
    if p["depth"] == "deep":
        d = "(deeply|low|all the way down|down low|very low)"
        adj = "(deep|full|low)"
    else:
        d = "(slightly|halfway|a little|partially|a bit|only halfway)"
        adj = "(half|shallow|small|partial|slight)"
    squats = count(n, "squat", "squats", adj)
    return [
        f"~squat [down] {d} {r} {v}",
        f"(~do|~perform) {squats} {v}",
        f"~bend $poss knees {d} (and ~stand back up|into a squat) {r} {v}",
        f"~crouch down {d} and ~stand (back) up {r} {v}",
        f"~lower $poss body [down] {d} into a squat {r} {v}",
        f"~go down into {count(n, 'squat', 'squats', adj)} {v}",
        f"~squat [down] {d} with $poss (arms|hands) (out in front|extended|forward) {r}",
        f"~bend $poss legs and ~squat {d} {r} {v}",
        f"~drop into {count(n, 'squat', 'squats', adj)} {v}",
        f"~squat {d} {r} {v} , holding a crouched position (briefly|for a moment)",
        f"~squat {d} {r} {v} as (an exercise|a warm up|part of an exercise)",
        f"~squat {d} {r} with $poss knees bent (outward|outwards)",
    ] + ([f"~do a set of {NUMBERS[n]} {adj} squats {v}"] if n > 1 else [])


def _sit_stand(p: dict[str, Any]) -> list[str]:
    sit = "(~sit down [on (a chair|a seat|something)]|~take a seat|~lower $self into a "\
          "(seat|chair|seated position))"
    stand = ("(~stand up [from (a chair|a seat|a seated position|sitting)]|~get up [from "
             "(a chair|a seated position)]|~rise from a seated position)")
    return {
        "sit_down": [sit, f"{sit} [slowly]", f"~stand still and then {sit}",
                     "~bend $poss knees and ~sit down [on (a chair|something)]",
                     "~go from standing to sitting [down]"],
        "stand_up": [stand, f"{stand} [and ~stand still]", "~go from sitting to standing [up]",
                     "~push $self up from a (chair|seated position)"],
        "sit_and_stand": [f"{sit} and then {stand}", f"{sit} before ~get:ing back up",
                          f"{sit} , then {stand}", "~sit down and ~stand back up",
                          f"{sit} (briefly|for a moment) and (then) {stand}"],
    }[p["variant"]]


def _bow(p: dict[str, Any]) -> list[str]:
    n = p["reps"]
    r = "[once]" if n == 1 else "(twice|two times|a couple of times)"
    if p["depth"] == "deep":
        d, adj = "(deeply|low|all the way down|very low)", "(deep|low|big)"
    else:
        d, adj = "(slightly|a little|a bit|lightly|gently)", "(slight|small|little|short)"
    bows = count(n, "bow", "bows", adj)
    return [
        f"~bow {d} {r}",
        f"~bow [forward] {d} {r}",
        f"~bend (forward|over) {d} at the waist {r}",
        f"~lean (forward|over) {d} [at the waist] {r} , as if bowing",
        f"(~take|~give|~make|~do) {bows}",
        f"~lower $poss (head|upper body|torso) {d} in a bow {r}",
        f"~stand (straight|upright) and ~bow {d} {r}",
        f"~bow {d} {r} while facing forward",
        f"~bow {d} {r} and then ~stand (back) up straight",
    ]


def _raise_arms(p: dict[str, Any]) -> list[str]:
    v = speed(p["speed"])
    variant, side = p["variant"], p["side"]
    if variant == "both_up":
        return [f"~raise both arms (up|above $poss head|in the air|upward|upwards) {v}",
                f"~lift $poss arms (up|above $poss head|over $poss head) {v}",
                f"~put both hands up (in the air|above $poss head) {v}",
                f"~raise $poss hands (up) (high|above $poss head) {v}",
                f"~bring both arms up (over|above) $poss head {v}",
                f"~stand with both arms raised (up|above $poss head) {v}"]
    if variant == "one_up":
        return [f"~raise $poss {side} (arm|hand) (up|in the air|above $poss head|upward) {v}",
                f"~lift $poss {side} arm (up|high|above $poss head) {v}",
                f"~reach up (high) with $poss {side} (arm|hand) {v}",
                f"~put $poss {side} hand up (in the air) {v}",
                f"~raise (only) $poss {side} arm (straight up|upward) {v}",
                f"~stand with $poss {side} arm raised (up|above $poss head) {v}"]
    if variant == "stretch_overhead":
        return [f"~stretch $poss arms (above|over) $poss head {v}",
                f"~reach (up|upward) (high) with both arms {v}",
                f"~stretch (up|upward|upwards) with both arms (above|over) $poss head {v}",
                f"~raise both arms (above|over) $poss head and ~stretch {v}",
                f"~do an overhead stretch {v}",
                f"~stretch (up|upward) on $poss toes with both arms (above|over) $poss head {v}",
                f"~stand with $poss arms stretched (above|over) $poss head {v}",
                "~stretch $poss arms (above|over) $poss head [(as a warm up|as an exercise)]"]
    return [f"~stretch $poss arms out to the sides {v}",
            f"~spread $poss arms (out) (wide|to the sides) {v}",
            f"~extend both arms (out to the sides|outward|sideways) {v}",
            f"~hold $poss arms out to the sides {v}",
            f"~stretch out $poss arms (sideways|to the side) {v}",
            f"~stand with $poss arms (outstretched|out wide|extended to the sides) {v}",
            f"~raise $poss arms (outwards|outward|sideways) to shoulder height {v}",
            f"~stand with $poss arms stretched out (to the sides|at shoulder height) {v}",
            f"~warm up by stretching $poss arms (out|outwards) {v}"]


def _sidestep(p: dict[str, Any]) -> list[str]:
    side, n = p["side"], p["steps"]
    to = f"to (the {side}:NOUN|$poss {side}:NOUN)"
    steps = count(n, "step", "steps", "[(side|sideways|small)]")
    r = reps(n)
    return [
        f"~take {steps} {to}",
        f"~step (sideways) {to} {r}",
        f"~sidestep {to} {r}",
        f"~shuffle (sideways) {to} [with {count(n, 'step', 'steps')}]",
        f"~move (sideways) {to} (with|taking) {steps}",
        f"~step {to} {r} , keeping $poss feet apart",
        f"~shift $poss weight and ~step (sideways) {to} {r}",
        f"~shift {to} with {steps}",
    ]


def _dance(p: dict[str, Any]) -> list[str]:
    v = speed(p["speed"])
    move = {"sway": "~sway:ing (from side to side|back and forth|left and right|$poss hips)",
            "arms_wave": "~wave:ing $poss arms (around|in the air|above $poss head)",
            "bounce": "~bounce:ing (up and down|on $poss feet|in place|on $poss toes)",
            }[p["style"]]
    verb = {"sway": "(~sway (from side to side|back and forth|$poss body|$poss hips|$poss "
                    "shoulders)|~twist $poss hips from side to side)",
            "arms_wave": "(~wave $poss arms (around|in the air|back and forth)|~flap $poss arms)",
            "bounce": "~bounce (up and down|on $poss feet|in place|on $poss toes)"}[p["style"]]
    return [
        f"~dance {v} (while|by) {move}",
        f"{verb} {v} as if dancing",
        f"~do a (little|small|simple) dance , {move} {v}",
        f"~dance {v} , {move}",
        f"{verb} {v} (to music|to a song|to the music)",
        f"~dance in place {v} (while|by) {move}",
        f"{verb} {v} , moving $poss body (to the music|like a dancer)",
    ]


def _march(p: dict[str, Any]) -> list[str]:
    n, v = p["reps"], speed(p["speed"])
    arms = ("(~swing:ing $poss arms|with $poss arms ~swing:ing [back and forth])"
            if p["arms"] == "swing" else
            "(with $poss arms (still|at $poss sides|by $poss sides|held still|down))")
    steps = f"({NUMBERS[n]} steps|for {NUMBERS[n]} steps|{NUMBERS[n]} times)"
    return [
        f"~march in place {steps} {arms} {v}",
        f"~march (on the spot|in place) {v} {arms} , taking {NUMBERS[n]} steps",
        f"~lift $poss knees (up high|high|up) for {NUMBERS[n]} steps , marching in place {v}",
        f"~walk in place {steps} {arms} {v}",
        f"~stand and ~march in place {v} {steps}",
        f"~march (on the spot|in place) {arms} {steps}",
        f"~march in place {steps} {v} (as a warm up|as an exercise|like a soldier)",
    ] + ([f"~march in place {steps} and ~keep $poss arms (still|at $poss sides)",
          f"~march in place {steps} with $poss arms resting at $poss sides"]
         if p["arms"] == "still" else [])


SAFE_PHRASES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "walk": _walk, "run": _run, "jump": _jump, "wave": _wave, "clap": _clap, "squat": _squat,
    "sit_stand": _sit_stand, "bow": _bow, "raise_arms": _raise_arms, "sidestep": _sidestep,
    "dance": _dance, "march": _march,
}
"""Safe family name -> function of the segment's parameters returning verb-phrase templates."""
