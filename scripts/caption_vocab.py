"""How realistic is the synthetic caption vocabulary? Two figures against real HumanML3D.

(a) coverage: the share of the 500 most frequent real content words (stop words excluded) that
    the synthetic captions use at least once. Target >= 60 %.
(b) novelty: the share of synthetic word *types* (distinct words) that never occur in any real
    caption. Target < 10 %.

Words are the lower-case alphabetic runs of the caption text after removing hyphens (what
HumanML3D's ``text_process`` sees before tagging), surface forms, not lemmas. The real corpus is
the original (non-mirrored) ids of ``humanml3d_texts.jsonl.gz``, read at run time; nothing of it
is stored in the repository. Synthetic captions come from ``caption_clip`` over the plans of a
``small`` set (``hmu_core.synth.plan.plan_dataset``).

Usage:
    .venv/bin/python scripts/caption_vocab.py [--data-dir ../shared/data] [--size small]
                                              [--seed 0] [--show-missed 50]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hmu_core.errors import DataError, HmuError
from hmu_core.synth.captions import caption_clip
from hmu_core.synth.plan import plan_dataset

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
TOP_N = 500

_STOP_TEXT = """
a an the and or but if then than so as of to in on at by for from with without into onto over
under up down out off about above below after before while during until through across along
around between behind against toward towards upon within is are was were be been being am do
does did doing done has have had having will would can could should may might must shall it its
itself this that these those there here he him his himself she her hers herself they them their
theirs themselves i me my we us our you your one ones who whom whose which what when where why how
all any both each few more most other some such no nor not only own same too very just also s t
again once still back away
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
"""Function words left out of the top-500 list: they say nothing about realism of content."""

_WORD = re.compile(r"[a-z]+")


def words_of(text: str) -> list[str]:
    """Lower-case alphabetic words of a caption, hyphens removed first (as text_process does)."""
    return _WORD.findall(text.lower().replace("-", ""))


def load_real_captions(data_dir: Path) -> list[str]:
    """Caption texts of the original (non-mirrored) HumanML3D ids.

    Raises:
        DataError: the file is missing or a line is not ``caption#tokens#start#end``.
    """
    path = data_dir / "humanml3d_texts.jsonl.gz"
    if not path.is_file():
        raise DataError(f"real captions not found at {path}; point --data-dir at shared/data")
    texts: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            record = json.loads(raw)
            if record["id"].startswith("M"):
                continue  # mirrors repeat the originals with left/right swapped
            for line in record["lines"]:
                fields = line.split("#")
                if len(fields) != 4:
                    raise DataError(f"{path} record {number}: line {line!r} has "
                                    f"{len(fields)} '#' fields, expected 4")
                texts.append(fields[0])
    return texts


def synthetic_captions(size: str | int, seed: int) -> list[str]:
    """Caption texts of every line of every clip of a planned synthetic set.

    Plans come from :func:`hmu_core.synth.plan.plan_dataset`, and each clip is captioned with
    the generator it gets in ``hmu data synth`` (the second child of its seed sequence).
    """
    texts: list[str] = []
    for plan in plan_dataset(size, seed).clips:
        caption_seq = np.random.SeedSequence(plan.seed).spawn(2)[1]
        texts.extend(line.text for line in caption_clip(plan, np.random.default_rng(caption_seq)))
    return texts


@dataclass(frozen=True)
class VocabFigures:
    """The two realism figures and the words behind them."""

    coverage: float
    novelty: float
    top_words: tuple[str, ...]
    missed_top: tuple[str, ...]
    novel_types: tuple[str, ...]
    synthetic_types: int


def vocab_figures(real: Iterable[str], synthetic: Iterable[str], top_n: int = TOP_N
                  ) -> VocabFigures:
    """Coverage of the real top-``top_n`` content words and share of unseen synthetic types."""
    real_counts = Counter(w for text in real for w in words_of(text))
    synth_types = {w for text in synthetic for w in words_of(text)}
    if not real_counts or not synth_types:
        raise DataError("vocab_figures needs non-empty real and synthetic caption lists")
    top = tuple(w for w, _ in real_counts.most_common() if w not in STOP_WORDS)[:top_n]
    missed = tuple(w for w in top if w not in synth_types)
    novel = tuple(sorted(w for w in synth_types if w not in real_counts))
    return VocabFigures(coverage=1 - len(missed) / len(top), novelty=len(novel) / len(synth_types),
                        top_words=top, missed_top=missed, novel_types=novel,
                        synthetic_types=len(synth_types))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--size", default="small",
                        help="synthetic set size: tiny, small (3,000 clips), full, or a count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-missed", type=int, default=0,
                        help="also list this many missed top words, most frequent first")
    args = parser.parse_args(argv)
    try:
        real = load_real_captions(args.data_dir)
    except HmuError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = int(args.size) if args.size.isdigit() else args.size
    try:
        synthetic = synthetic_captions(size, args.seed)
    except HmuError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    figures = vocab_figures(real, synthetic)
    print(f"real captions: {len(real)}; synthetic captions: {len(synthetic)} from "
          f"a '{args.size}' set; synthetic word types: {figures.synthetic_types}")
    print(f"(a) coverage of the top {len(figures.top_words)} real content words: "
          f"{100 * figures.coverage:.1f} %  (target >= 60 %)")
    print(f"(b) synthetic word types never seen in real captions: "
          f"{100 * figures.novelty:.1f} %  (target < 10 %) {list(figures.novel_types)}")
    if args.show_missed:
        print("missed:", " ".join(figures.missed_top[: args.show_missed]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
