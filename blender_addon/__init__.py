"""hmu Blender extension: text-to-motion with unlearned (safe) models, inside Blender.

Register/unregister only. The package is installed as ``bl_ext.<repo>.hmu`` from the built
zip, or enabled as ``blender_addon`` from the source tree (tests), so nothing here assumes a
module name: preferences use ``__package__``. The hmu code comes from the runtime wheel the
zip lists (``vendor.check_runtime`` refuses another add-on's package of the same name) before
any submodule imports ``hmu_core`` or ``exporter``.
"""

from __future__ import annotations

from . import vendor

vendor.check_runtime()

import bpy  # noqa: E402
from bpy.props import PointerProperty  # noqa: E402

from . import (  # noqa: E402
    ops_bone_map,
    ops_bundles,
    ops_generate,
    ops_library,
    ops_render,
    ops_rig,
    ops_variation,
    panels,
    prefs,
    props,
    runtime_cache,
)

CLASSES = (
    prefs.HMU_PG_bundle,
    prefs.HMU_UL_bundles,
    prefs.HMU_AP_preferences,
    *ops_bundles.CLASSES,
    props.HMU_PG_bone,
    props.HMU_PG_scene,
    props.HMU_PG_job,
    ops_generate.HMU_OT_generate,
    ops_generate.HMU_OT_test_bundle,
    ops_rig.HMU_OT_build_rig,
    ops_library.HMU_OT_generate_library,
    ops_render.HMU_OT_render_eval,
    ops_variation.HMU_OT_use_variation,
    *ops_bone_map.CLASSES,
    *panels.CLASSES,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.hmu = PointerProperty(type=props.HMU_PG_scene)
    bpy.types.WindowManager.hmu_job = PointerProperty(type=props.HMU_PG_job)


def unregister() -> None:
    del bpy.types.WindowManager.hmu_job
    del bpy.types.Scene.hmu
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    runtime_cache.clear()
