"""Provider selection on faked onnxruntime modules: report what a session really runs on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.runtime import Generator
from exporter.runtime import sessions as S
from hmu_core.errors import BundleError, ConfigError


class FakeOrt:
    """An onnxruntime stand-in: ``available`` providers; a session gets those of ``granted``
    that it asked for."""

    def __init__(self, available: list[str], granted: list[str], fail: bool = False) -> None:
        self.available, self.granted, self.fail = available, granted, fail
        self.requested: list[list[str]] = []
        self.preloaded = 0
        ort = self

        class SessionOptions:
            intra_op_num_threads = 0
            inter_op_num_threads = 0

        class InferenceSession:
            def __init__(self, path: str, sess_options=None, providers=()) -> None:
                ort.requested.append(list(providers))
                if ort.fail:
                    raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF")
                self.options = sess_options
                self.providers = [p for p in ort.granted if p in providers]

            def get_providers(self) -> list[str]:
                return self.providers

        self.SessionOptions, self.InferenceSession = SessionOptions, InferenceSession

    def get_available_providers(self) -> list[str]:
        return list(self.available)

    def preload_dlls(self) -> None:
        self.preloaded += 1


GPU_BUILD = [S.CUDA, S.CPU]


def test_cuda_session_is_reported_as_cuda():
    ort = FakeOrt(GPU_BUILD, GPU_BUILD)
    _, placement = S.open_session(Path("base.onnx"), "auto", None, ort)
    assert placement == S.Placement(S.CUDA) and ort.requested == [GPU_BUILD]
    assert ort.preloaded == 1


def test_session_silently_lacking_cuda_is_cpu(caplog):
    # onnxruntime-gpu without a GPU: CUDA is "available", the session quietly runs on CPU.
    ort = FakeOrt(GPU_BUILD, [S.CPU])
    with caplog.at_level(logging.WARNING), pytest.warns(RuntimeWarning, match="running on CPU"):
        _, placement = S.open_session(Path("base.onnx"), "auto", 2, ort)
    assert placement.provider == S.CPU and "CUDA was requested" in placement.reason
    assert "no usable GPU" in caplog.text


def test_cpu_build_and_cpu_request_never_ask_for_cuda():
    ort = FakeOrt([S.CPU], [S.CPU])
    _, placement = S.open_session(Path("a.onnx"), "auto", None, ort)
    assert placement.provider == S.CPU and "no CUDA provider" in placement.reason
    _, placement = S.open_session(Path("a.onnx"), "cpu", None, FakeOrt(GPU_BUILD, GPU_BUILD))
    assert placement == S.Placement(S.CPU, "cpu requested")
    assert ort.requested == [[S.CPU]]
    with pytest.warns(RuntimeWarning):  # asked explicitly, cannot have it: warned, not silent
        _, placement = S.open_session(Path("a.onnx"), "cuda", None, ort)
    assert placement.provider == S.CPU and ort.requested[-1] == GPU_BUILD


def test_bad_arguments_and_broken_graph():
    ort = FakeOrt([S.CPU], [S.CPU])
    with pytest.raises(ConfigError, match="device"):
        S.open_session(Path("a.onnx"), "tpu", None, ort)
    with pytest.raises(ConfigError, match="threads"):
        S.open_session(Path("a.onnx"), "cpu", 0, ort)
    with pytest.raises(BundleError, match=r"a.onnx cannot be loaded"):
        S.open_session(Path("a.onnx"), "cpu", None, FakeOrt([S.CPU], [S.CPU], fail=True))


def test_generator_reports_cpu_when_any_session_lacks_cuda(momask_bundle, monkeypatch):
    real = S.open_session

    def half_cuda(path, device, threads, ort=None):
        session, _ = real(path, "cpu", threads)  # real graphs, so the I/O checks pass
        cpu = path.name == "decoder.onnx"
        return session, S.Placement(S.CPU, "x") if cpu else S.Placement(S.CUDA)

    monkeypatch.setattr("exporter.runtime.generator.open_session", half_cuda)
    gen = Generator(momask_bundle, device="auto")
    assert gen.provider == S.CPU and gen.provider_reason == "x"
    assert gen.placements["base"].provider == S.CUDA
    assert gen.generate("a person walks", seconds=2.0).motions[0].provenance["provider"] == S.CPU
