"""Add-on preferences: which bundle, on which device, with how many threads.

The device line also shows what the last session *really* got: onnxruntime-gpu silently
falls back to CPU when CUDA or cuDNN is missing (reference/runtime.md §1), so asking for CUDA
proves nothing; the provider and the reason come from the runtime's created sessions.
"""

from __future__ import annotations

import os
from typing import Any

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import runtime_cache


def _device_changed(_self: Any, _context: Any) -> None:
    runtime_cache.clear()


def default_threads() -> int:
    """Cores minus one, so Blender's UI keeps a core while the model runs."""
    return max(1, (os.cpu_count() or 2) - 1)


class HMU_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    bundle_path: StringProperty(
        name="Bundle", subtype="DIR_PATH",
        description="Model bundle directory made by 'hmu export'")
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
        layout.prop(self, "bundle_path")
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
