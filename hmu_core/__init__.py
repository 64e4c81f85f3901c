"""hmu_core: motion representation, datasets, models, unlearning and evaluation for hmu.

This file stays import-light and torch-free: importing ``hmu_core.motion`` (which runs inside
Blender, where torch is absent) executes it first.
"""

__version__ = "0.1.0"
