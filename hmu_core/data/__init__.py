"""Datasets in the HumanML3D layout: reader, concept splits, one concept's forget/retain view
(``concept_data``), statistics, torch datasets.

Import the submodules directly (``hmu_core.data.humanml3d``, ``hmu_core.data.concepts``, ...);
this file imports nothing, so the torch-free modules stay usable without torch.
"""
