"""File paths from the panel: ``//`` (relative to the .blend) only once the file is saved.

In an unsaved file Blender resolves ``//video.mp4`` against the process's working directory,
wherever Blender was started from; the add-on refuses that instead, with what to do, and the
panel shows where a saved file's relative path really goes.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from hmu_core.errors import ConfigError


def path_problem(path: str, what: str) -> str:
    """Why ``path`` cannot be used ('' when it can): empty, or relative in an unsaved file."""
    if not path.strip():
        return f"Set the {what}"
    if path.startswith("//") and not bpy.data.filepath:
        return f"The {what} {path} is relative to the .blend file, which is not saved yet: " \
               "save the file or choose an absolute path"
    return ""


def resolve(path: str, what: str) -> Path:
    """The absolute path ``path`` names (``//`` = beside the saved .blend).

    Raises:
        ConfigError: :func:`path_problem`.
    """
    why = path_problem(path, what)
    if why:
        raise ConfigError(why)
    return Path(bpy.path.abspath(path)).resolve()
