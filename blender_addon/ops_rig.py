"""Build Rig (Retarget subpanel): an SMPL-topology armature with the SMPL body mesh or the
mannequin."""

from __future__ import annotations

from typing import Any

import bpy

from exporter.scene.apply import DEFAULT_RIG_NAME


class HMU_OT_build_rig(bpy.types.Operator):
    """Add an SMPL-topology armature to the scene and make it the target: with the SMPL body
    mesh when an SMPL model file is set, with a mannequin body otherwise"""

    bl_idname = "hmu.build_rig"
    bl_label = "Build SMPL Rig"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    @classmethod
    def poll(cls, context: Any) -> bool:
        if context.mode != "OBJECT":
            cls.poll_message_set("Switch to Object Mode")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        from exporter.scene.rig import SMPL_JOINT_NAMES, build_smpl_armature
        from exporter.scene.smpl_mesh import add_smpl_mesh, load_smpl_npz
        from hmu_core.errors import HmuError

        props = context.scene.hmu
        model = None
        if props.smpl_model:
            try:
                model = load_smpl_npz(bpy.path.abspath(props.smpl_model))
            except HmuError as exc:
                self.report({"ERROR"}, str(exc))
                return {"CANCELLED"}
        armature = build_smpl_armature(
            DEFAULT_RIG_NAME, collection=context.scene.collection, body=model is None,
            rest_joints=None if model is None else model.joints)
        if model is None:
            self.report({"INFO"}, "hmu: no SMPL model file set, so the rig has a mannequin body; "
                                  "set one under Retarget for a real body mesh")
        else:
            add_smpl_mesh(armature, model, tuple(SMPL_JOINT_NAMES))
            self.report({"INFO"}, f"hmu: built {armature.name} with an SMPL body of "
                                  f"{model.num_vertices} vertices")
        props.target = armature
        return {"FINISHED"}
