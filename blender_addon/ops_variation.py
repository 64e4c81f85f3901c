"""Use Variation (main panel): pick which of one generation's variations plays.

Generate puts each variation on an NLA track of its own, stacked directly above the first,
all but the first muted. The tracks of one generation are the neighbours whose strip starts
at the same frame with the same prompt; choosing one unmutes it and mutes the others.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty


def _signature(track: Any) -> tuple[float, str] | None:
    """(start frame, prompt) of an hmu track's single strip; None for any other track."""
    if len(track.strips) != 1 or track.strips[0].action is None:
        return None
    strip = track.strips[0]
    prompt = strip.action.get("hmu_prompt")
    return None if prompt is None else (strip.frame_start, prompt)


def variation_group(armature: Any, name: str | None = None) -> list[Any]:
    """The tracks of the generation that made track ``name`` (default: the top track), bottom
    to top; [] when that track is not hmu's."""
    data = armature.animation_data if armature is not None else None
    if data is None or not data.nla_tracks:
        return []
    tracks = list(data.nla_tracks)
    index = len(tracks) - 1 if name is None else next(
        (i for i, t in enumerate(tracks) if t.name == name), -1)
    key = _signature(tracks[index]) if index >= 0 else None
    if key is None:
        return []
    low = high = index
    while low > 0 and _signature(tracks[low - 1]) == key:
        low -= 1
    while high < len(tracks) - 1 and _signature(tracks[high + 1]) == key:
        high += 1
    return tracks[low:high + 1]


class HMU_OT_use_variation(bpy.types.Operator):
    """Play this variation: unmute its NLA track and mute the other variations of the same
    generation"""

    bl_idname = "hmu.use_variation"
    bl_label = "Use Variation"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    track: StringProperty(name="Track", description="The NLA track of the variation to play")

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene.hmu.target is not None

    def execute(self, context: Any) -> set[str]:
        group = variation_group(context.scene.hmu.target, self.track)
        if not group:
            self.report({"ERROR"}, f"{self.track!r} is not a track of an hmu generation on "
                                   "the Target")
            return {"CANCELLED"}
        for track in group:
            track.mute = track.name != self.track
        return {"FINISHED"}
