"""``hmu unlearn lcr|uce|rece|finetune|retrain``: one command per method, one record each.

Every method reads a model set (``--model DIR``) and a dataset (``--data DIR``), splits the
dataset's ``train_val`` clips by the concepts, edits or retrains, and writes a model set in the
same layout plus ``unlearning.json`` (``hmu_core.unlearn.record``) to ``--out``, atomically.
Inputs are checked before any work: an unknown concept, an ``r`` larger than the codebook, a
model set without a VQ or a dataset without forget clips stop with one line and exit code 2,
and nothing is written. torch is imported inside ``run`` so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from hmu_core.cli import common
from hmu_core.errors import ConfigError

AUTO_R_GRID = (0, 4, 8, 16, 24, 32, 48, 64)

_SUPPRESS_EPILOG = """examples:
  hmu unlearn suppress --model runs/set --data runs/data/synth-small \\
      --concept violence_motionx --r 32 --out runs/suppress
  hmu unlearn suppress --model runs/set --data runs/data/humanml3d-captions --stats generated \\
      --concept violence --r 32 --out runs/suppress-captions  # no motions
  hmu unlearn suppress --model runs/set --data runs/data/synth-small \\
      --concept violence_motionx --r auto --retain-budget 1 --out runs/suppress-auto
  hmu unlearn suppress --model runs/set --data runs/data/synth-small \\
      --concept violence_motionx --r 16 --greedy 4 --out runs/suppress-greedy
  hmu unlearn suppress --model runs/set --data runs/data/humanml3d-captions --stats generated \\
      --concept violence --r 16 --greedy 2 --evaluator checkpoints/t2m --glove glove \\
      --out runs/suppress-captions-greedy  # no motions: the T2M evaluator judges
  hmu unlearn suppress --model runs/set --data runs/data/synth-small \\
      --concept violence_motionx --r 0:32,1-3:16 --out runs/suppress-layers

--stats data counts codes in VQ-encoded motions (the LCR protocol, cached in MODEL/cache/);
--stats generated counts codes in tokens the original model samples for every caption line of
train_val (lengths from its length estimator or BAMM's END token), so a model and captions are
enough. --r auto tries the --r-grid values on the val split (one r for every layer, then the
base layer alone), judges the generated motions (the synthetic set's family classifier, else a
toxicity classifier fitted on the dataset's motions; with --evaluator, which a captions-only
dataset needs, the T2M evaluator: toxic when the nearest val caption is a forget caption,
retain by R-precision top 3) and keeps the r with the lowest forget
toxicity whose retain score stays within --retain-budget points of the original's; the curve
goes into unlearning.json and r_search.png. --greedy N then adds base-layer codes one at a
time on the same split and judge: each step tries every code ranked r+1..r+K and keeps the
one that lowers the forget toxicity most, while the retain score stays within the budget.
The steps go into unlearning.json.
"""

_EPILOG = """examples:
  hmu unlearn lcr --model runs/set --data data/synth-small --concept violence --out runs/lcr
  hmu unlearn lcr --model ckpt/t2m --data data/HumanML3D \\
      --concept kick:16,punch_jab_box_hit_beat:8 --text-encoder clip:/path/ViT-B-32.pt \\
      --out runs/lcr-violence
  hmu unlearn lcr --model runs/set --data data/synth-small --concept kick --r 8 \\
      --safe-code sampled --seed 3 --out runs/lcr-kick-r8

--model DIR is a model set as for `hmu generate` (vq/, trans/ or bamm/, res/,
length_estimator/, hmu.json); --trans DIR picks another base transformer (e.g. DIR/bamm). The
output has the same layout plus unlearning.json (method, concepts, every parameter, seed,
removed codes, sha256 of each edited tensor before and after, versions, wall time).
"""


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, metavar="DIR", required=True,
                   help="model set directory to unlearn from")
    for part in ("vq", "trans", "res"):
        p.add_argument(f"--{part}", type=Path, metavar="DIR",
                       help=f"{part} model directory (overrides --model's)")
    p.add_argument("--text-encoder", metavar="SPEC",
                   help="text encoder spec, e.g. minilm or clip:/path/ViT-B-32.pt (default: the "
                   "model set's, else minilm)")
    common.add_concept(p, "concept(s) to unlearn: built-in names ('hmu concepts') or TOML/JSON "
                       "files; NAME:R gives LCR a per-concept r, e.g. kick:16,punch:8 "
                       "(default: violence)", metavar="NAME[:R]")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output model set directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out that hmu wrote (never anything else)")
    p.add_argument("--seed", type=common.seed, default=0, help="random seed (default: 0)")
    common.add_device(p)
    common.add_no_progress(p)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, metavar="DIR", required=True,
                   help="dataset in the HumanML3D layout (its train_val clips are used)")
    p.add_argument("--mode", choices=("official", "word"), default="official",
                   help="keyword matching: official (case-sensitive substring, as the HMU "
                   "scripts) or word (whole words with inflections). Default: official")
    p.add_argument("--min-occurrences", type=int, metavar="N",
                   help="caption lines that must match for a clip to be forgotten (default: "
                   "the concept's, 1 for built-ins)")


def _method(methods: argparse._SubParsersAction, name: str, help_text: str,
            description: str) -> argparse.ArgumentParser:
    p = methods.add_parser(name, help=help_text, description=description, epilog=_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _model_args(p)
    return p


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu unlearn``."""
    p = sub.add_parser("unlearn", help="remove toxic concepts from a model set",
                       description="Unlearn toxic concepts: LCR (codebook rows), UCE/RECE "
                       "(text projection), fine-tuning or retraining on the retain set.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    methods = p.add_subparsers(dest="method", metavar="METHOD", required=True)
    lcr = _method(methods, "lcr", "Latent Code Replacement (training-free, seconds)",
                  "Rank VQ codes by how much more often forget motions use them than retain "
                  "motions, and overwrite the top r codebook rows with one safe code plus noise.")
    _data_args(lcr)
    lcr.add_argument("--r", type=int, default=16,
                     help="codes to remove per concept without NAME:R (default: 16)")
    lcr.add_argument("--alpha", type=float, default=1.0,
                     help="noise scale, in codebook standard deviations (default: 1)")
    lcr.add_argument("--safe-code", choices=("official", "sampled"), default="official",
                     help="official: code 0 (a random non-toxic code if 0 is toxic); sampled: a "
                     "seeded draw among codes retain motions use. Default: official")
    lcr.add_argument("--layers", default="0", metavar="Q[,Q]",
                     help="quantizer layers to edit (default: 0, the base layer)")
    lcr.add_argument("--repeats", type=common.positive_int,
                     help="--stats data: random crops per caption entry (default: 20); "
                     "--stats generated: generations per caption line (default: 1)")
    lcr.add_argument("--no-pad", action="store_true",
                     help="count codes of the crop only, not of the zero-padded tail "
                     "(the official code counts all 49 tokens)")
    lcr.add_argument("--no-cache", action="store_true",
                     help="encode the dataset again instead of reading MODEL/cache/")
    _stats_args(lcr)
    lcr.set_defaults(run=run_lcr)
    sup = _method(methods, "suppress", "code suppression: the transformers can never emit the "
                  "concept's codes (hmu's method, training-free)",
                  "Rank each RVQ layer's codes by how much more often forget samples use them "
                  "than retain samples (as LCR) and make the top r of every layer impossible "
                  "to sample: a large negative bias on their logits in the base and residual "
                  "transformer heads. The VQ is untouched; bundles carry the edit.")
    sup.epilog = _SUPPRESS_EPILOG
    _data_args(sup)
    sup.add_argument("--r", default="32", metavar="R|Q:R,...|auto",
                     help="codes to suppress per layer: one number for every layer (32), "
                     "LAYER:R items (0:32,1-5:16; unnamed layers keep every code), or auto "
                     "(chosen on the val split within --retain-budget). Default: 32")
    sup.add_argument("--repeats", type=common.positive_int,
                     help="--stats data: random crops per caption entry (default: 20); "
                     "--stats generated: generations per caption line (default: 1)")
    sup.add_argument("--no-pad", action="store_true",
                     help="--stats data: count codes of the crop only, not of the padded tail")
    sup.add_argument("--no-cache", action="store_true",
                     help="compute the statistics again instead of reading MODEL/cache/")
    _stats_args(sup)
    sup.add_argument("--retain-budget", type=float, default=1.0, metavar="POINTS",
                     help="--r auto and --greedy: how many points the retain score may drop below "
                     "the original's on the val split (default: 1)")
    sup.add_argument("--r-grid", type=int, nargs="+", default=AUTO_R_GRID, metavar="R",
                     help=f"--r auto: r values tried (default: "
                     f"{' '.join(map(str, AUTO_R_GRID))})")
    sup.add_argument("--search-seeds", type=common.positive_int, default=2, metavar="N",
                     help="--r auto and --greedy: generations per val caption line (default: 2)")
    sup.add_argument("--greedy", type=int, default=0, metavar="N",
                     help="then add up to N more base-layer codes one at a time, each the "
                     "next-ranked code that lowers the val forget toxicity most, within "
                     "--retain-budget (default: 0, none)")
    sup.add_argument("--greedy-pool", type=common.positive_int, default=24, metavar="K",
                     help="--greedy: candidates are the base codes ranked r+1..r+K (default: 24)")
    sup.add_argument("--evaluator", type=Path, metavar="DIR",
                     help="--r auto and --greedy: judge with this T2M evaluator (an 'hmu train "
                     "evaluator' output or the official checkpoints/t2m) instead of a "
                     "classifier fitted on the motions; needed on a captions-only dataset")
    sup.add_argument("--glove", type=Path, metavar="DIR",
                     help="--evaluator: its word vectors (default: glove/ beside it)")
    sup.set_defaults(run=run_suppress)
    for name, help_text, description in (
            ("uce", "Unified Concept Editing of the text projections (closed form)",
             "Edit both transformers' cond_emb so the concepts' keywords map to the guide's "
             "output while preserved words keep theirs (float64 closed form, bias kept)."),
            ("rece", "RECE: UCE plus adversarial re-erasure rounds (closed form)",
             "UCE, then rounds of: find the embedding that still reproduces the original "
             "output for each concept, and erase that too.")):
        q = _method(methods, name, help_text, description)
        q.add_argument("--technique", choices=("tensor", "replace"), default="tensor",
                       help="erase targets: tensor (guide output minus its component along the "
                       "concept's, the HMU default) or replace (the guide output)")
        q.add_argument("--lamb", type=float, default=0.1, help="pull to the old weights (0.1)")
        q.add_argument("--erase-scale", type=float, default=0.1, help="s_e (0.1)")
        q.add_argument("--preserve-scale", type=float, default=0.5, help="s_p (0.5)")
        q.add_argument("--guide", default="", metavar="TEXT",
                       help="text the concepts are steered to (default: the empty text, as "
                       "HMU); 'null' = the zero vector, i.e. the CFG unconditional token")
        q.add_argument("--preserve", nargs="*", metavar="WORD",
                       help="texts whose outputs must not move (default: HMU's 21 retain words)")
        q.add_argument("--hmu-compat", action="store_true",
                       help="reproduce the official HMU code's forms (bias in the targets; "
                       "RECE's adversarial embedding from the edited weights)")
        if name == "rece":
            q.add_argument("--epochs", type=int, default=1,
                           help="adversarial rounds after the UCE edit (default: 1, as HMU)")
            q.add_argument("--reg", type=float, default=1e-3,
                           help="regulariser of the adversarial embedding (default: 1e-3)")
        q.set_defaults(run=run_text_edit)
    for name, help_text, description in (
            ("finetune", "fine-tune the transformers on the retain set (FT baseline)",
             "Continue training the base and residual transformers on the train/val clips "
             "minus the forget clips, with the VQ frozen."),
            ("retrain", "retrain the transformers from scratch on the retain set (D_r)",
             "Train the same architectures from a fresh seeded start on the train/val clips "
             "minus the forget clips: the model that never saw the concept.")):
        q = _method(methods, name, help_text, description)
        _data_args(q)
        q.add_argument("--preset", default="tiny", choices=("tiny", "humanml3d"),
                       help="training schedule preset (default: tiny)")
        q.add_argument("--epochs", type=int, default=5 if name == "finetune" else None,
                       help="epochs to train" + (" (default: 5)" if name == "finetune" else
                                                 " (default: the preset's full schedule)"))
        q.add_argument("--max-iters", type=int, help="iteration budget (overrides the preset's)")
        q.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
        q.set_defaults(run=run_train_baseline)


def _stats_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stats", choices=("data", "generated"), default="data",
                   help="where code statistics come from: data (the dataset's motions, "
                   "VQ-encoded: the paper's protocol) or generated (tokens the original model "
                   "samples for the split's captions: no motions needed, e.g. the real "
                   "HumanML3D captions from `hmu data import-captions`). Default: data")
    p.add_argument("--max-lines", type=common.positive_int, metavar="N", default=2000,
                   help="--stats generated: generate at most N forget caption lines and N "
                   "retain lines (seeded subsets of each; default: 2000)")


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--layers {text!r}: give quantizer indices like 0 or 0,1") from None


def _check_out(args: argparse.Namespace) -> None:
    """Before any work: an --out hmu may write and a --device that exists."""
    common.check_out_dir(args.out, args.overwrite)
    common.torch_device(args.device)


def _load(args: argparse.Namespace) -> Any:
    from hmu_core.models.model_set import load_model_set

    return load_model_set(args.model, device=common.torch_device(args.device), vq=args.vq,
                          trans=args.trans, res=args.res, text_encoder=args.text_encoder)


def _data(args: argparse.Namespace, names: list[str]) -> Any:
    from hmu_core.data.concept_data import load_concept_data

    return load_concept_data(args.data, names, mode=args.mode,
                             min_occurrences=args.min_occurrences)


def run_lcr(args: argparse.Namespace) -> int:
    """``hmu unlearn lcr``."""
    from hmu_core.data.concept_data import parse_concept_specs
    from hmu_core.unlearn.lcr_model import LCRConfig
    from hmu_core.unlearn.sets import make_lcr_set

    started = time.perf_counter()
    _check_out(args)
    specs = parse_concept_specs(args.concept)
    protocol, generation = _protocols(args)
    config = LCRConfig(r=args.r, alpha=args.alpha, safe_code=args.safe_code,
                       layers=_layers(args.layers), seed=args.seed, protocol=protocol,
                       stats=args.stats, generation=generation)
    loaded = _load(args)
    data = _data(args, [s.name for s in specs])
    with common.ProgressBars(args.no_progress) as progress:
        made = make_lcr_set(loaded, data, specs, config, args.out, mode=args.mode,
                            cache_dir=_cache_dir(args, loaded), progress=progress,
                            overwrite=args.overwrite, text_encoder=_stats_encoder(args, loaded))
    codes = ", ".join(f"layer {q}: {len(c)} codes" for q, c in made.result.removed.items())
    print(f"{args.out}: LCR removed {codes} (safe code "
          f"{', '.join(str(s) for s in made.result.safe_codes.values())}) in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def _protocols(args: argparse.Namespace) -> tuple[Any, Any]:
    """The sample protocol of either statistics source (``--repeats`` means crops per entry
    for data, generations per caption line for generated, default 1)."""
    from hmu_core.unlearn.code_stats import SampleProtocol
    from hmu_core.unlearn.generated_stats import GenerationProtocol

    data_repeats = args.repeats if args.repeats is not None else 20
    generated_repeats = args.repeats if args.repeats is not None else 1
    return (SampleProtocol(repeats=data_repeats, seed=args.seed, pad_to_max=not args.no_pad),
            GenerationProtocol(repeats=generated_repeats, seed=args.seed,
                               max_lines=args.max_lines))


def _cache_dir(args: argparse.Namespace, loaded: Any) -> Path | None:
    return None if args.no_cache else loaded.models.cache_dir


def _stats_encoder(args: argparse.Namespace, loaded: Any) -> Any:
    """The text encoder when the statistics are generated (None otherwise: not loaded)."""
    from hmu_core.text.registry import load_text_encoder

    return load_text_encoder(loaded.models.text_encoder) if args.stats == "generated" else None


def _quiet(_: str) -> None:
    """A step reporter that shows nothing (``--no-progress``)."""


def run_suppress(args: argparse.Namespace) -> int:
    """``hmu unlearn suppress``."""
    from hmu_core.data.concept_data import parse_concept_specs
    from hmu_core.text.registry import load_text_encoder
    from hmu_core.unlearn.r_search import SearchConfig
    from hmu_core.unlearn.sets import make_suppress_set
    from hmu_core.unlearn.suppress_model import SuppressConfig, num_layers, parse_layer_r

    started = time.perf_counter()
    _check_out(args)
    specs = parse_concept_specs(args.concept)
    if any(s.r is not None for s in specs):
        raise ConfigError("NAME:R sets LCR's per-concept r; suppression takes --r per layer "
                          "(e.g. --r 0:32,1-5:16) for every concept")
    auto = str(args.r).strip().lower() == "auto"
    search = SearchConfig(grid=tuple(args.r_grid), retain_budget=args.retain_budget,
                          seeds=args.search_seeds, seed=args.seed, choose_r=auto,
                          greedy=args.greedy, greedy_pool=args.greedy_pool,
                          evaluator=args.evaluator, glove=args.glove) \
        if auto or args.greedy else None
    if search is None and (args.evaluator or args.glove):
        raise ConfigError("--evaluator and --glove judge the val search: give --r auto or "
                          "--greedy N")
    protocol, generation = _protocols(args)
    loaded = _load(args)
    layers = num_layers(loaded)
    config = SuppressConfig(r=dict.fromkeys(range(layers), 0) if auto else
                            parse_layer_r(args.r, layers), stats=args.stats,
                            protocol=protocol, generation=generation)
    data = _data(args, [s.name for s in specs])
    with common.ProgressBars(args.no_progress) as progress:
        made = make_suppress_set(loaded, data, config, args.out,
                                 text_encoder=load_text_encoder(loaded.models.text_encoder),
                                 mode=args.mode, seed=args.seed,
                                 cache_dir=_cache_dir(args, loaded), progress=progress,
                                 overwrite=args.overwrite, search=search,
                                 names=[s.name for s in specs],
                                 step=_quiet if args.no_progress else progress.write)
    record = made.record["results"].get("r_search")
    greedy = made.record["results"].get("greedy")
    codes = ", ".join(f"layer {q}: {len(c)}" for q, c in made.result.codes.items() if c)
    print(f"{args.out}: suppressed {codes or 'no'} codes ({args.stats} statistics"
          f"{', r chosen on val: ' + str(record['chosen']) if record else ''}"
          f"{', added on val: ' + str(greedy['added']) if greedy else ''}) in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def run_text_edit(args: argparse.Namespace) -> int:
    """``hmu unlearn uce`` and ``hmu unlearn rece``."""
    from hmu_core.data.concept_data import parse_concept_specs
    from hmu_core.data.concepts import resolve_concepts
    from hmu_core.text.registry import load_text_encoder
    from hmu_core.unlearn.rece import RECEConfig
    from hmu_core.unlearn.sets import make_text_edit_set
    from hmu_core.unlearn.uce import HMU_PRESERVE_WORDS, UCEConfig

    started = time.perf_counter()
    _check_out(args)
    specs = parse_concept_specs(args.concept)
    if any(s.r is not None for s in specs):
        raise ConfigError("NAME:R sets LCR's r; UCE/RECE take plain concept names")
    concepts = resolve_concepts([s.name for s in specs])
    uce = UCEConfig(lamb=args.lamb, erase_scale=args.erase_scale,
                    preserve_scale=args.preserve_scale, technique=args.technique,
                    guide=args.guide, hmu_compat=args.hmu_compat)
    config: UCEConfig | RECEConfig = uce if args.method == "uce" else RECEConfig(
        uce=uce, epochs=args.epochs, reg=args.reg, hmu_compat=args.hmu_compat)
    preserve = HMU_PRESERVE_WORDS if args.preserve is None else args.preserve
    loaded = _load(args)
    encoder = load_text_encoder(loaded.models.text_encoder)
    made = make_text_edit_set(loaded, encoder, concepts, config, args.out, preserve=preserve,
                              seed=args.seed, overwrite=args.overwrite)
    print(f"{args.out}: {args.method.upper()} edited cond_emb of "
          f"{', '.join(made.result.edited_parts)} "
          f"({len(made.result.results['erase_texts'])} erased texts) in "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def run_train_baseline(args: argparse.Namespace) -> int:
    """``hmu unlearn finetune`` and ``hmu unlearn retrain``."""
    from hmu_core.data.concept_data import parse_concept_specs
    from hmu_core.text.registry import load_text_encoder
    from hmu_core.train.runtime import init_runtime
    from hmu_core.unlearn.finetune import TrainBaselineConfig
    from hmu_core.unlearn.sets import make_baseline_set

    started = time.perf_counter()
    _check_out(args)
    specs = parse_concept_specs(args.concept)
    config = TrainBaselineConfig(method=args.method, preset=args.preset, epochs=args.epochs,
                                 max_iters=args.max_iters, lr=args.lr, seed=args.seed)
    loaded = _load(args)
    data = _data(args, [s.name for s in specs])
    encoder = load_text_encoder(loaded.models.text_encoder)
    made = make_baseline_set(loaded, data, encoder, config, args.out,
                             runtime=init_runtime(args.device), mode=args.mode,
                             progress=not args.no_progress, overwrite=args.overwrite)
    print(f"{args.out}: {args.method} trained {', '.join(made.result)} on "
          f"{len(data.retain_ids)} retain clips in {time.perf_counter() - started:.1f} s")
    return 0
