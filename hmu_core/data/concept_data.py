"""The forget and retain clips of a dataset split for the concepts being unlearned.

Every method starts here: LCR counts codes on the forget and retain clips, fine-tuning and
retraining use the retain clips, UCE/RECE take the concepts' keywords. Matching defaults to
the official mode (case-sensitive substring, as the HMU split scripts), over ``train_val``
(the statistics never see the test split, which is kept for evaluation).

Per-concept retain sets follow the official ``lcr_combined.sh``: the codes of ``kick`` are
ranked against the clips that do not match ``kick`` (``train_val-wo-kick``); the union of the
concepts' forget clips is what fine-tuning and retraining leave out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hmu_core.data.concepts import Concept, ConceptSplit, MatchMode, SplitResult, resolve_concepts
from hmu_core.data.humanml3d import HumanML3D
from hmu_core.errors import ConfigError, DataError


@dataclass(frozen=True)
class ConceptSpec:
    """A concept name (or concept file) with an optional per-concept setting (LCR's ``r``)."""

    name: str
    r: int | None = None


def parse_concept_specs(items: Sequence[str]) -> list[ConceptSpec]:
    """``["kick:16,punch:8", "weapons"]`` -> specs; ``name:r`` sets a per-concept ``r``.

    Raises:
        ConfigError: empty item or a non-integer ``r``.
    """
    specs: list[ConceptSpec] = []
    for item in items:
        for part in item.split(","):
            name, _, r = part.strip().partition(":")
            if not name:
                raise ConfigError(f"empty concept in {item!r}; write e.g. 'kick:16,punch:8'")
            if r and not r.strip().isdigit():
                raise ConfigError(f"concept {part!r}: the part after ':' must be a whole number "
                                  f"of codes (e.g. kick:16)")
            specs.append(ConceptSpec(name.strip(), int(r) if r else None))
    if not specs:
        raise ConfigError("give at least one concept, e.g. --concept violence")
    return specs


@dataclass(frozen=True)
class ConceptData:
    """A dataset, the ids of one split, the concepts and their forget/retain partition."""

    dataset: HumanML3D
    split: str
    ids: tuple[str, ...]
    concepts: tuple[Concept, ...]
    result: SplitResult

    @property
    def forget_ids(self) -> tuple[str, ...]:
        """Clips toxic for at least one concept."""
        return self.result.forget_ids

    @property
    def retain_ids(self) -> tuple[str, ...]:
        """Clips toxic for none of the concepts."""
        return self.result.retain_ids

    def concept_forget(self, name: str) -> tuple[str, ...]:
        return self.result.concept_forget[name]

    def concept_retain(self, name: str) -> tuple[str, ...]:
        """Clips that do not match ``name`` (the official per-concept ``wo`` split)."""
        forget = set(self.result.concept_forget[name])
        return tuple(i for i in self.ids if i not in forget)

    def summary(self) -> dict[str, object]:
        """Split sizes for the record."""
        return {"dir": str(self.dataset.root), "split": self.split, "clips": len(self.ids),
                "forget_clips": len(self.forget_ids), "retain_clips": len(self.retain_ids),
                "mode": str(self.result.mode),
                "per_concept": {k: len(v) for k, v in self.result.concept_forget.items()}}


def load_concept_data(data_dir: str | Path, names: Sequence[str], *, split: str = "train_val",
                      mode: MatchMode | str = MatchMode.OFFICIAL,
                      min_occurrences: int | None = None) -> ConceptData:
    """Split ``data_dir``'s ``split`` ids into forget and retain clips for ``names``.

    Raises:
        ConfigError: unknown concept. DataError: a missing dataset or split file, or a split
            with no forget clip for some concept (nothing to unlearn: wrong keywords?).
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"dataset directory {root} not found")
    dataset = HumanML3D(root)
    concepts = resolve_concepts(list(names))
    ids = tuple(dataset.ids(split))
    if not ids:
        raise DataError(f"{root / (split + '.txt')} lists no clips")
    splitter = ConceptSplit(concepts, mode, min_occurrences)
    result = splitter.split({i: dataset.caption_lines(i) for i in ids})
    empty = [c.name for c in concepts if not result.concept_forget[c.name]]
    if empty:
        raise DataError(f"no clip of {root}'s {split} split matches concept(s) "
                        f"{', '.join(empty)} in {splitter.mode} mode: nothing to unlearn "
                        f"(check the keywords, or try --mode word)")
    if not result.retain_ids:
        raise DataError(f"every clip of {root}'s {split} split matches the concepts; there is "
                        f"no retain set")
    return ConceptData(dataset=dataset, split=split, ids=ids, concepts=tuple(concepts),
                       result=result)
