"""Add-on preferences: which bundle, on which device, with how many threads.

Bundles are a list: the built-in safe bundle the zip ships (entry 0 once the list is written)
plus the user's, added by path; one is active. ``bundle_path`` reads the active one's folder
and, set from a script (``prefs.bundle_path = "/x"``), activates that folder, adding it to the
list when it is new; so a fresh install generates with the built-in bundle and no setup.

The device line also shows what the last session *really* got: onnxruntime-gpu silently
falls back to CPU when CUDA or cuDNN is missing (reference/runtime.md §1), so asking for CUDA
proves nothing; the provider and the reason come from the runtime's created sessions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    IntProperty,
    StringProperty,
)

from . import bundles, runtime_cache


def _device_changed(_self: Any, _context: Any) -> None:
    runtime_cache.clear()


def default_threads() -> int:
    """Cores minus one, so Blender's UI keeps a core while the model runs."""
    return max(1, (os.cpu_count() or 2) - 1)


# -- bundles: the built-in one and the user's, one active --------------------------------------

class HMU_PG_bundle(bpy.types.PropertyGroup):
    """One bundle of the list (``name`` is what the list shows)."""

    builtin: BoolProperty(name="Built-in", default=False,
                          description="The safe bundle shipped inside the add-on")
    path: StringProperty(name="Path", subtype="DIR_PATH",
                         description="Bundle directory made by 'hmu export'")


def bundle_dir(entry: Any) -> str:
    """An entry's folder: the add-on's own for the built-in one (found again at every start,
    so it follows updates), '' when this add-on has none (a source checkout)."""
    if entry.builtin:
        found = bundles.builtin_bundle()
        return "" if found is None else str(found)
    return bpy.path.abspath(entry.path)


def ensure_builtin(prefs: Any) -> None:
    """Make entry 0 the built-in bundle (before the list's first write), keeping the active
    entry active."""
    if len(prefs.bundles) and prefs.bundles[0].builtin:
        return
    entry = prefs.bundles.add()
    entry.name, entry.builtin = bundles.BUILTIN_NAME, True
    prefs.bundles.move(len(prefs.bundles) - 1, 0)
    prefs.active_bundle = prefs.active_bundle + 1 if len(prefs.bundles) > 1 else 0


def add_bundle(prefs: Any, path: str) -> int:
    """Activate the bundle at ``path``, adding it to the list when new; '' activates the
    built-in one. Returns its index."""
    ensure_builtin(prefs)
    if path:
        want = os.path.normpath(bpy.path.abspath(path))
        for index, entry in enumerate(prefs.bundles):
            if not entry.builtin and os.path.normpath(bpy.path.abspath(entry.path)) == want:
                prefs.active_bundle = index
                return index
        entry = prefs.bundles.add()
        entry.path, entry.name = path, Path(want).name or want
    prefs.active_bundle = len(prefs.bundles) - 1 if path else 0
    return prefs.active_bundle


def _get_bundle_path(self: Any) -> str:
    if not len(self.bundles):
        found = bundles.builtin_bundle()
        return "" if found is None else str(found)
    return bundle_dir(self.bundles[min(max(self.active_bundle, 0), len(self.bundles) - 1)])


def _set_bundle_path(self: Any, value: str) -> None:
    add_bundle(self, value)


class HMU_UL_bundles(bpy.types.UIList):
    """One row per bundle: its name and whether its model is unlearned."""

    def draw_item(self, _context: Any, layout: Any, _data: Any, item: Any, _icon: int,
                  _active_data: Any, _active_property: str, _index: int = 0,
                  _flt_flag: int = 0) -> None:
        path = bundle_dir(item)
        info = bundles.bundle_info(path) if path else None
        status = "missing" if info is None else info.status
        row = layout.row(align=True)
        row.label(text=item.name, icon="LOCKED" if item.builtin else "FILE_FOLDER")
        row.label(text={"unlearned": "unlearned", "original": "not unlearned"}.get(
            status, "missing"), icon={"unlearned": "CHECKMARK", "original": "ERROR"}.get(
            status, "CANCEL"))


def draw_bundles(layout: Any, prefs: Any) -> None:
    """The bundle list (the built-in one alone until the user adds one) with Add/Remove."""
    row = layout.row()
    if len(prefs.bundles):
        row.template_list("HMU_UL_bundles", "", prefs, "bundles", prefs, "active_bundle",
                          rows=3)
    else:
        row.box().label(text=f"{bundles.BUILTIN_NAME} (active)", icon="LOCKED")
    col = row.column(align=True)
    col.operator("hmu.bundle_add", icon="ADD", text="")
    col.operator("hmu.bundle_remove", icon="REMOVE", text="")


class HMU_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    bundles: CollectionProperty(type=HMU_PG_bundle, name="Bundles")
    active_bundle: IntProperty(name="Active Bundle", default=0, min=0,
                               description="The bundle Generate uses")
    bundle_path: StringProperty(
        name="Bundle", subtype="DIR_PATH", get=_get_bundle_path, set=_set_bundle_path,
        description="The active bundle's directory; setting it activates that directory, "
        "adding it to the list when new (empty: the built-in bundle)")
    device: EnumProperty(
        name="Device", default="AUTO", update=_device_changed,
        items=[("AUTO", "Auto", "CUDA when a session really gets it, else CPU"),
               ("CUDA", "CUDA", "Ask for CUDA (GPU build of the add-on); falls back to CPU "
                "with a message"),
               ("CPU", "CPU", "Always CPU")])
    threads: IntProperty(
        name="Threads", default=0, min=0, max=256, update=_device_changed,
        description="onnxruntime threads per session; 0: cores minus one")
    cuda_library_path: StringProperty(
        name="CUDA Libraries", subtype="DIR_PATH", update=_device_changed,
        description="Optional folder with CUDA 12/13 and cuDNN 9 libraries (a system CUDA "
        "lib folder, or a 'pip install --target' folder of the nvidia-* wheels)")
    trusted_keys: StringProperty(
        name="Trusted Keys", subtype="FILE_PATH", update=_device_changed,
        description="Optional file of public keys (hmu keygen's KEY.pub lines): only bundles "
        "signed by one of them load")

    def draw(self, context: Any) -> None:
        layout = self.layout
        draw_bundles(layout, self)
        row = layout.row()
        row.prop(self, "device", expand=True)
        layout.prop(self, "threads")
        layout.prop(self, "cuda_library_path")
        layout.prop(self, "trusted_keys")
        draw_session(layout)


def draw_session(layout: Any) -> None:
    """The provider the latest session really got, with the fallback reason if any."""
    info = runtime_cache.last_session
    box = layout.box()
    if info is None:
        box.label(text="Session: no bundle loaded yet (press Test Bundle)", icon="INFO")
        return
    short = info.provider.replace("ExecutionProvider", "")
    box.label(text=f"Session: {short}", icon="CHECKMARK" if short == "CUDA" else "INFO")
    if info.reason:
        for line in _wrap(info.reason, 70):
            box.label(text=line)


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def get_prefs(context: Any) -> HMU_AP_preferences:
    return context.preferences.addons[__package__].preferences


def runtime_settings(context: Any) -> tuple[str, int | None]:
    """``(device, threads)`` as the runtime takes them."""
    prefs = get_prefs(context)
    return prefs.device.lower(), (prefs.threads or default_threads())
