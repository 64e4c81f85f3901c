"""``hmu export``: a MoMask/BAMM model set -> a bundle directory for the torch-free runtime.

The arguments become one ``exporter.export.export_bundle`` call; torch, onnx and the exporter
are imported inside ``run`` only, so ``hmu --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmu_core.cli import common

_EPILOG = """examples:
  hmu export --model runs/set --out runs/bundles/momask
  hmu export --model checkpoints/t2m/set --text-encoder clip:/path/ViT-B-32.pt \\
      --out runs/bundles/t2m
  hmu export --model runs/set --trans runs/unlearned/uce --out runs/bundles/uce --overwrite
  hmu export --model runs/set --out runs/bundles/momask-int8 --quantize int8
  hmu export --model runs/set --out runs/bundles/safe --sign runs/keys/studio

--model DIR is a model set (as for `hmu generate`): DIR/vq/, DIR/trans/ (MoMask) or DIR/bamm/
(BAMM), optionally DIR/res/ and DIR/length_estimator/, or DIR/hmu.json naming them. --trans
replaces the base transformer (e.g. an unlearned one). The bundle holds one ONNX graph per
stage (text encoder, base step, residual step, VQ decoder, length estimator), the tokenizer
files, mean/std.npy and manifest.json (hashes, configs, the unlearning record). Every graph is
checked against torch before the bundle is written; an interrupted export leaves nothing.
--quantize int8 stores the base and residual step graphs with int8 MatMul weights (dynamic
quantization; text encoder and decoder stay float32): faster on CPU, but its tokens differ
from the float32 bundle's; the manifest records it and its agreement with torch.
--quantize text-int8 stores the text encoder's weights as int8 (one scale per output channel),
computing in float32: a 4x smaller file (the add-on's built-in bundle), text vectors within
cosine 0.999 of float32.
Run it with: from exporter.runtime import Generator; Generator("BUNDLE").generate([...]).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hmu export``."""
    p = sub.add_parser(
        "export", help="export a model set as an ONNX bundle for the torch-free runtime",
        description="Export a MoMask or BAMM model set (and its text encoder) as a bundle: "
        "ONNX graphs + manifest.json, run by exporter.runtime with numpy and onnxruntime.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, metavar="DIR",
                   help="model set directory (see below)")
    p.add_argument("--out", type=Path, required=True, metavar="BUNDLE",
                   help="bundle directory to create")
    p.add_argument("--text-encoder", metavar="SPEC",
                   help="text encoder spec, e.g. minilm or clip:/path/ViT-B-32.pt "
                   "(default: the model set's, else minilm)")
    p.add_argument("--trans", type=Path, metavar="DIR",
                   help="base transformer directory overriding the model set's")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--quantize", choices=("none", "int8", "text-int8"), default="none",
                   help="int8: dynamic int8 MatMuls in the base/residual graphs; text-int8: the "
                   "text encoder's weights stored as int8 (default: none)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing BUNDLE directory that hmu wrote (never anything "
                   "else)")
    p.add_argument("--sign", type=Path, metavar="KEY",
                   help="sign the bundle with this private key from 'hmu keygen'")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export, then print where the bundle is and what it holds."""
    import json

    from exporter.export import export_bundle

    common.check_out_dir(args.out, args.overwrite)
    out = export_bundle(args.model, args.out, text_encoder=args.text_encoder, trans=args.trans,
                        opset=args.opset, overwrite=args.overwrite,
                        quantize=None if args.quantize == "none" else args.quantize,
                        sign=args.sign)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    print(f"{out}: {manifest['model_kind']} bundle, graphs {', '.join(manifest['graphs'])}, "
          f"text encoder {manifest['text_encoder']['name']} ({manifest['text_encoder']['dim']}-d)"
          f"{', unlearned' if manifest.get('unlearning') else ''}"
          f"{_quantization(manifest.get('quantization'))}"
          f"{', signed' if args.sign else ''}")
    return 0


def _quantization(entry: dict | None) -> str:
    """The summary line's words for the manifest's ``quantization`` entry."""
    if not entry:
        return ""
    return f", int8 {'/'.join(entry.get('graphs', []))} ({entry.get('method')})"
