"""The caption grammar's words: lemma and UPOS of each surface form, and verb conjugation.

Tags follow what spaCy 2.3 wrote into the shipped HumanML3D ``texts/`` (``reference/
humanml3d.md`` §8), e.g. possessives are DET ("their/DET"), "up"/"down" after a verb are ADP,
"forward" is ADV, "left"/"right" are ADJ before a noun and NOUN after "the"/"to". Only words the
grammar uses are listed; a template with any other word fails to parse.
"""

from __future__ import annotations

from hmu_core.errors import ConfigError

# "surface POS" or "surface lemma POS", one entry per line.
_ENTRIES = """
a DET
an DET
the DET
this DET
another DET
each DET
both DET
their DET
his DET
her DET
its DET
some DET
all DET
he PRON
she PRON
they PRON
it PRON
them PRON
him PRON
himself PRON
herself PRON
themselves PRON
someone PRON
something PRON
one NUM
two NUM
three NUM
four NUM
five NUM
six NUM
eight NUM
person NOUN
man NOUN
woman NOUN
figure NOUN
individual NOUN
human NOUN
character NOUN
subject NOUN
guy NOUN
arm NOUN
arms arm NOUN
hand NOUN
hands hand NOUN
leg NOUN
legs leg NOUN
foot NOUN
feet foot NOUN
knee NOUN
knees knee NOUN
elbow NOUN
elbows elbow NOUN
fist NOUN
fists fist NOUN
head NOUN
chest NOUN
shoulder NOUN
shoulders shoulder NOUN
waist NOUN
hip NOUN
hips hip NOUN
torso NOUN
body NOUN
side NOUN
sides side NOUN
front NOUN
ground NOUN
floor NOUN
air NOUN
place NOUN
spot NOUN
circle NOUN
direction NOUN
pace NOUN
speed NOUN
motion NOUN
movement NOUN
position NOUN
stance NOUN
height NOUN
level NOUN
time NOUN
times time NOUN
step NOUN
steps step NOUN
kick NOUN
kicks kick NOUN
punch NOUN
punches punch NOUN
jab NOUN
jabs jab NOUN
hook NOUN
hooks hook NOUN
uppercut NOUN
uppercuts uppercut NOUN
knife NOUN
sword NOUN
gun NOUN
pistol NOUN
rifle NOUN
shot NOUN
shots shot NOUN
squat NOUN
squats squat NOUN
jump NOUN
jumps jump NOUN
bow NOUN
wave NOUN
clap NOUN
claps clap NOUN
dance NOUN
left ADJ
right ADJ
high ADJ
low ADJ
deep ADJ
slight ADJ
quick ADJ
slow ADJ
fast ADV
normal ADJ
steady ADJ
straight ADV
forward ADV
forwards ADV
backward ADV
backwards ADV
sideways ADV
up ADP
down ADP
around ADV
back ADV
again ADV
away ADV
out ADP
then ADV
twice ADV
once ADV
slowly ADV
quickly ADV
rapidly ADV
briskly ADV
gently ADV
slightly ADV
deeply ADV
repeatedly ADV
still ADV
together ADV
in ADP
on ADP
at ADP
to ADP
with ADP
from ADP
into ADP
over ADP
above ADP
of ADP
for ADP
before ADP
after ADP
towards ADP
toward ADP
and CCONJ
or CCONJ
while SCONJ
is AUX
more ADJ
anticlockwise ADV
balancing balance VERB
counter ADV
like ADP
medium ADJ
movements movement NOUN
moving move VERB
onto ADP
rotating rotate VERB
set NOUN
suddenly ADV
twisting twist VERB
fashion NOUN
does AUX
bent ADJ
raised raise VERB
stretched stretch VERB
crouched ADJ
outwards ADV
resting rest VERB
walking walk VERB
stretching stretch VERB
weight NOUN
toes toe NOUN
room NOUN
area NOUN
angle NOUN
opposite ADJ
higher ADJ
than SCONJ
ready ADJ
near ADP
forearm NOUN
fighter NOUN
boxer NOUN
dancer NOUN
soldier NOUN
hammer NOUN
stick NOUN
heavy ADJ
item NOUN
exercise NOUN
warm ADJ
part NOUN
total NOUN
long ADJ
strides stride NOUN
seconds second NOUN
second NOUN
circles circle NOUN
motions motion NOUN
complete ADJ
directly ADV
facing face VERB
that PRON
stretch NOUN
jog NOUN
run NOUN
stop NOUN
across ADP
ahead ADV
along ADP
alternating alternate VERB
apart ADV
arc NOUN
as SCONJ
if SCONJ
be AUX
between ADP
big ADJ
bit NOUN
bowing bow VERB
bows bow NOUN
boxing box VERB
briefly ADV
bringing bring VERB
brisk ADJ
by ADP
carefully ADV
casually ADV
chair NOUN
circular ADJ
clockwise ADV
counterclockwise ADV
consecutive ADJ
separate ADJ
couple NOUN
curve NOUN
curved ADJ
dancing dance VERB
distance NOUN
downward ADV
even ADJ
extended extend VERB
face NOUN
few ADJ
several ADJ
fighting fight VERB
fight NOUN
finally ADV
first ADV
force NOUN
forth ADV
full ADJ
gentle ADJ
gesture NOUN
goodbye NOUN
half ADJ
halfway ADV
hard ADV
held hold VERB
hello INTJ
holding hold VERB
hurriedly ADV
jogging jog VERB
keeping keep VERB
kicking kick VERB
landing land VERB
large ADJ
leisurely ADV
light ADJ
lightly ADV
line NOUN
little ADJ
manner NOUN
marching march VERB
moderate ADJ
moment NOUN
music NOUN
neutral ADJ
next ADV
normally ADV
object NOUN
only ADV
opponent NOUN
original ADJ
other ADJ
outstretched ADJ
outward ADV
overhead ADJ
partial ADJ
partially ADV
path NOUN
pattern NOUN
possible ADJ
punching punch VERB
rapid ADJ
regular ADJ
returning return VERB
row NOUN
running run VERB
same ADJ
seat NOUN
seated ADJ
shallow ADJ
shape NOUN
short ADJ
simple ADJ
single ADJ
sitting sit VERB
slashing slash VERB
stabbing stab VERB
small ADJ
song NOUN
standing stand VERB
starting start VERB
swinging swing VERB
taking take VERB
upper ADJ
upright ADV
upward ADV
upwards ADV
using use VERB
vertical ADJ
very ADV
way NOUN
whilst SCONJ
who PRON
wide ADJ
waving wave VERB
"""


def _build(entries: str) -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for line in entries.strip().splitlines():
        parts = line.split()
        surface, lemma, pos = (parts[0], parts[0], parts[1]) if len(parts) == 2 else parts
        if surface in table:
            raise ConfigError(f"caption lexicon lists {surface!r} twice")
        table[surface] = (lemma, pos)
    return table


LEXICON: dict[str, tuple[str, str]] = _build(_ENTRIES)
"""Surface form -> (lemma, default UPOS)."""

# Verbs the grammar conjugates with ``~verb``. Value: irregular (3sg, -ing) or None for the rules.
VERBS: dict[str, tuple[str, str] | None] = {
    "walk": None, "run": ("runs", "running"), "jog": ("jogs", "jogging"), "turn": None,
    "jump": None, "hop": ("hops", "hopping"), "wave": None, "clap": ("claps", "clapping"),
    "squat": ("squats", "squatting"), "sit": ("sits", "sitting"), "stand": None,
    "bow": None, "raise": None, "lift": None, "stretch": None, "step": ("steps", "stepping"),
    "dance": None, "sway": None, "bounce": None, "march": None, "swing": None, "move": None,
    "kick": None, "punch": None, "jab": ("jabs", "jabbing"), "throw": None,
    "hit": ("hits", "hitting"), "beat": None, "stab": ("stabs", "stabbing"),
    "shoot": None, "aim": None, "point": None, "hold": None, "fire": None, "bring": None,
    "do": ("does", "doing"), "take": None, "make": None, "bend": None, "lower": None,
    "use": None, "perform": None, "get": ("gets", "getting"), "go": ("goes", "going"),
    "start": None, "begin": ("begins", "beginning"), "come": None, "keep": None,
    "slash": None, "swipe": None, "stop": ("stops", "stopping"), "return": None,
    "appear": None, "balance": None, "box": ("boxes", "boxing"), "break": None,
    "crouch": None, "drive": None, "extend": None, "give": None, "grab": ("grabs", "grabbing"),
    "lean": None, "leap": None, "proceed": None, "push": None, "put": ("puts", "putting"),
    "reach": None, "remain": None, "rise": None, "seem": None, "shuffle": None,
    "sidestep": ("sidesteps", "sidestepping"), "slow": None, "spread": None, "sprint": None,
    "stay": None, "land": None, "fight": None, "alternate": None, "pretend": None,
    "shift": None, "pull": None, "pivot": None, "back": None,
    "continue": None, "circle": None, "twist": None, "flap": ("flaps", "flapping"),
    "warm": None, "end": None, "rest": None, "drop": ("drops", "dropping"), "rotate": None,
    "repeat": None,
}


def conjugate(lemma: str) -> dict[str, str]:
    """Forms of a verb: {"s": "kicks", "ing": "kicking", "base": "kick"}.

    Raises:
        ConfigError: the verb is not in :data:`VERBS`.
    """
    if lemma not in VERBS:
        raise ConfigError(f"caption grammar: verb {lemma!r} is not in VERBS of "
                          "hmu_core/synth/caption_lexicon.py")
    irregular = VERBS[lemma]
    if irregular is not None:
        third, ing = irregular
    else:
        third = lemma + ("es" if lemma.endswith(("s", "sh", "ch", "x", "z")) else "s")
        stem = lemma[:-1] if lemma.endswith("e") and not lemma.endswith("ee") else lemma
        ing = stem + "ing"
    return {"s": third, "ing": ing, "base": lemma}
