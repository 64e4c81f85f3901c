"""Read the tensors of a TorchScript archive without running it (OpenAI's ``ViT-B-32.pt``).

``torch.load(weights_only=True)`` refuses TorchScript archives, and ``torch.jit.load`` builds
the scripted modules (and is deprecated from torch 2.13 on). But the archive's ``data.pkl`` is
a plain pickle: each module is ``GLOBAL '__torch__.<path> <Class>'`` + ``NEWOBJ`` + a dict of
attributes, tensors are ``torch._utils._rebuild_tensor_v2`` over persistent storages kept in
``<archive>/data/<key>``. This module unpickles it with an allow-list in the spirit of
``weights_only``: module classes become inert attribute holders, tensors are rebuilt from the
raw storages, and any other global (anything that could run code) is refused. The result is
the module tree's tensors under their dotted names, i.e. the ``state_dict()`` keys.
"""

from __future__ import annotations

import io
import pickle
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class _ScriptObject:
    """Stand-in for a ``__torch__.*`` class: keeps the attribute dict, has no behaviour."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple[int, ...],
                    stride: tuple[int, ...], *_: Any) -> torch.Tensor:
    """``_rebuild_tensor_v2`` on a flat storage tensor (grad flag and hooks are ignored)."""
    return storage.as_strided(size, stride, offset).clone()


def _identity(value: Any, *_: Any) -> Any:
    """TorchScript's typed-container tags (``build_intlist``, ``restore_type_tag``, ...)."""
    return value


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, root: str) -> None:
        super().__init__(io.BytesIO(data))
        self._archive = archive
        self._root = root

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module == "torch.jit._pickle" and (name.startswith("build_") or
                                              name == "restore_type_tag"):
            return _identity
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in a weights file")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        raw = self._archive.read(f"{self._root}/data/{key}")
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if len(raw) < numel * itemsize:
            raise pickle.UnpicklingError(f"storage {key} is truncated")
        return torch.frombuffer(bytearray(raw[: numel * itemsize]), dtype=dtype)


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Tensors of the module tree under dotted names (submodules recurse)."""
    state = obj.__dict__.get("_state") if isinstance(obj, _ScriptObject) else obj
    if not isinstance(state, dict):
        return
    for name, value in state.items():
        if not isinstance(name, str):
            continue
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, _ScriptObject):
            _collect(value, f"{prefix}{name}.", out)


def is_torchscript_archive(path: str | Path) -> bool:
    """TorchScript archives hold ``code/`` and ``constants.pkl``; ``torch.save`` zips do not."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in zf.namelist())


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The named tensors (parameters and buffers) of a TorchScript archive, on CPU.

    Raises:
        pickle.UnpicklingError: the archive uses a global outside the allow-list.
        KeyError, ValueError, zipfile.BadZipFile: the archive is not laid out as expected.
    """
    with zipfile.ZipFile(path) as zf:
        data_pkl = next((n for n in zf.namelist() if n.count("/") == 1
                         and n.endswith("/data.pkl")), None)
        if data_pkl is None:
            raise ValueError(f"{path} has no <archive>/data.pkl")
        root = data_pkl.split("/")[0]
        order = zf.read(f"{root}/byteorder").decode().strip() \
            if f"{root}/byteorder" in zf.namelist() else "little"
        if order != sys.byteorder:
            raise ValueError(f"{path} stores {order}-endian tensors; this machine is "
                             f"{sys.byteorder}-endian")
        obj = _RestrictedUnpickler(zf.read(data_pkl), zf, root).load()
    out: dict[str, torch.Tensor] = {}
    _collect(obj, "", out)
    return out
