"""The procedural synthetic benchmark: motions by FK on the HumanML3D skeleton, captions from a
grammar, written in the HumanML3D layout (see ``hmu data synth``)."""
