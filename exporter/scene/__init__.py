"""Every piece of hmu that writes Blender data, shared by ``hmu clips`` and the Blender add-on
(imports bpy; never torch). The add-on itself holds only its UI: properties, operators, panels,
preferences and the jobs that run off the UI thread.

- ``exporter.scene.rig``: the SMPL-topology armature (Y-up armature data, object rotated +90°
  about X) with a mannequin body (``exporter.scene.mannequin``), and checks that a user-picked
  armature has SMPL topology;
- ``exporter.scene.keying``: a ``Motion`` -> a new layered action on such an armature;
- ``exporter.scene.retarget``: a ``Motion`` -> a new action on any humanoid armature (Mixamo,
  Rigify, UE5...) through its bone map (the maths is ``hmu_core.motion.retarget``);
- ``exporter.scene.formats``: FBX / GLB / BVH export (atomic) and the matching importers;
- ``exporter.scene.library``: one clip -> FBX/GLB files in a throw-away scene (``hmu clips``);
- ``exporter.scene.placement``: a clip onto a character's timeline, aligned to where it stands
  and faces, as a blended NLA strip;
- ``exporter.scene.apply``: a Generate's motions onto the user's character in one undoable
  step (rig or bone map, actions, strips; removed again on failure);
- ``exporter.scene.smpl_mesh``: a real SMPL body mesh from the user's ``.npz`` model file;
- ``exporter.scene.eval_video``: the original and the unlearned model side by side, to MP4;
- ``exporter.scene.worker``: the add-on's library and video tasks in a background Blender.

This file imports nothing, so importing the package does not import bpy.
"""
