"""Motion representation: skeleton constants, HumanML3D features, SMPL IK/FK, Motion, writers,
and what puts a motion on a character: bone maps, retargeting and the foot-contact clean-up.

Imports numpy only (a test proves it with torch made unimportable), because this package runs
inside Blender's Python and the onnxruntime runtime, where torch is not available.
"""
