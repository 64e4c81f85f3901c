"""Provider selection on faked onnxruntime modules: report what a session really runs on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from exporter.runtime import Generator, sessions
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


GPU_BUILD = [sessions.CUDA, sessions.CPU]


def test_cuda_session_is_reported_as_cuda():
    ort = FakeOrt(GPU_BUILD, GPU_BUILD)
    _, placement = sessions.open_session(Path("base.onnx"), "auto", None, ort)
    assert placement == sessions.Placement(sessions.CUDA) and ort.requested == [GPU_BUILD]
    assert ort.preloaded == 1


def test_session_silently_lacking_cuda_is_cpu(caplog):
    # onnxruntime-gpu without a GPU: CUDA is "available", the session quietly runs on CPU.
    ort = FakeOrt(GPU_BUILD, [sessions.CPU])
    with caplog.at_level(logging.WARNING), pytest.warns(RuntimeWarning, match="running on CPU"):
        _, placement = sessions.open_session(Path("base.onnx"), "auto", 2, ort)
    assert placement.provider == sessions.CPU and "CUDA was requested" in placement.reason
    assert "no usable GPU" in caplog.text


def test_cpu_build_and_cpu_request_never_ask_for_cuda():
    ort = FakeOrt([sessions.CPU], [sessions.CPU])
    _, placement = sessions.open_session(Path("a.onnx"), "auto", None, ort)
    assert placement.provider == sessions.CPU and "no CUDA provider" in placement.reason
    _, placement = sessions.open_session(Path("a.onnx"), "cpu", None, FakeOrt(GPU_BUILD, GPU_BUILD))
    assert placement == sessions.Placement(sessions.CPU, "cpu requested")
    assert ort.requested == [[sessions.CPU]]
    with pytest.warns(RuntimeWarning):  # asked explicitly, cannot have it: warned, not silent
        _, placement = sessions.open_session(Path("a.onnx"), "cuda", None, ort)
    assert placement.provider == sessions.CPU and ort.requested[-1] == GPU_BUILD


def test_bad_arguments_and_broken_graph():
    ort = FakeOrt([sessions.CPU], [sessions.CPU])
    with pytest.raises(ConfigError, match="device"):
        sessions.open_session(Path("a.onnx"), "tpu", None, ort)
    with pytest.raises(ConfigError, match="threads"):
        sessions.open_session(Path("a.onnx"), "cpu", 0, ort)
    with pytest.raises(BundleError, match=r"a.onnx cannot be loaded"):
        sessions.open_session(Path("a.onnx"), "cpu", None,
                              FakeOrt([sessions.CPU], [sessions.CPU], fail=True))


def test_generator_reports_cpu_when_any_session_lacks_cuda(momask_bundle, monkeypatch):
    real = sessions.open_session

    def half_cuda(path, device, threads, ort=None):
        session, _ = real(path, "cpu", threads)  # real graphs, so the I/O checks pass
        cpu = path.name == "decoder.onnx"
        placement = sessions.Placement(sessions.CPU, "x") if cpu else \
            sessions.Placement(sessions.CUDA)
        return session, placement

    monkeypatch.setattr("exporter.runtime.generator.open_session", half_cuda)
    gen = Generator(momask_bundle, device="auto")
    assert gen.provider == sessions.CPU and gen.provider_reason == "x"
    assert gen.placements["base"].provider == sessions.CUDA
    motion = gen.generate("a person walks", seconds=2.0).motions[0]
    assert motion.provenance["provider"] == sessions.CPU


class PoolOrt(FakeOrt):
    """FakeOrt with onnxruntime's thread-pool rules: ``set_global_thread_pool_sizes`` works
    once; with global pools a session must not ask for its own, without them it must."""

    def __init__(self, pools: tuple | None = None, has_api: bool = True) -> None:
        super().__init__([sessions.CPU], [sessions.CPU])
        self.pools = pools
        self.shared: list[bool] = []
        if has_api:
            self.set_global_thread_pool_sizes = self._set_pools
        base = self.InferenceSession
        ort = self

        class InferenceSession(base):
            def __init__(self, path, sess_options=None, providers=()) -> None:
                shared = not getattr(sess_options, "use_per_session_threads", True)
                if ort.pools is not None and not shared:
                    raise RuntimeError("use_per_session_threads must be false when using a "
                                       "global thread pool")
                if ort.pools is None and shared:
                    raise RuntimeError("session_env.EnvCreatedWithGlobalThreadPools() was "
                                       "false. [...] the CreateEnvWithGlobalThreadPools API.")
                ort.shared.append(shared)
                super().__init__(path, sess_options, providers)

        self.InferenceSession = InferenceSession

    def _set_pools(self, intra: int, inter: int) -> None:
        if self.pools is not None:
            raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : Global thread pools have "
                               "already been created, cannot replace them")
        self.pools = (intra, inter)


@pytest.fixture
def pool(monkeypatch):
    """A fresh process-wide pool record, outside Blender."""
    fresh = sessions.SharedPool()
    monkeypatch.setattr(sessions, "SHARED_POOL", fresh)
    monkeypatch.delitem(__import__("sys").modules, "bpy", raising=False)
    return fresh


def test_sessions_share_one_pool_sized_by_the_first(pool):
    ort = PoolOrt()
    sessions.open_session(Path("a.onnx"), "cpu", 2, ort)
    sessions.open_session(Path("b.onnx"), "cpu", 2, ort)
    assert ort.pools == (2, 1) and ort.shared == [True, True]
    assert pool.size(ort, 2) == 2
    # onnxruntime refuses own pools beside global ones: another size shares the pool too.
    sessions.open_session(Path("c.onnx"), "cpu", 1, ort)
    assert ort.shared == [True] * 3 and ort.pools == (2, 1)


def test_omp_num_threads_sizes_the_pool_when_no_threads_are_asked(pool, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    ort = PoolOrt()
    sessions.open_session(Path("a.onnx"), "cpu", None, ort)
    assert ort.pools == (3, 1)
    for value, want in (("1", 1), ("", None), ("0", None), ("two", None), (" 4 ", 4)):
        monkeypatch.setenv("OMP_NUM_THREADS", value)
        assert sessions.default_threads() == want, value
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert sessions.default_threads() is None
    old = PoolOrt(has_api=False)
    session, _ = sessions.open_session(Path("a.onnx"), "cpu", None, old)
    assert session.options.intra_op_num_threads == 0  # onnxruntime's default


def test_foreign_pool_is_shared_and_missing_api_uses_own_pools(pool):
    ort = PoolOrt(pools=(4, 1))  # someone in this process made global pools first
    sessions.open_session(Path("a.onnx"), "cpu", 2, ort)
    assert ort.shared == [True] and ort.pools == (4, 1)
    old = PoolOrt(has_api=False)
    session, _ = sessions.open_session(Path("a.onnx"), "cpu", 3, old)
    assert old.shared == [False] and session.options.intra_op_num_threads == 3


def test_inside_blender_no_pool_is_claimed_but_a_foreign_one_is_used(pool, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "bpy", object())
    ort = PoolOrt()
    sessions.open_session(Path("a.onnx"), "cpu", 2, ort)
    assert ort.pools is None and ort.shared == [False]
    other = PoolOrt(pools=(2, 1))  # another add-on made global pools: per-session is refused
    sessions.open_session(Path("a.onnx"), "cpu", 2, other)
    assert other.shared == [True] and pool.size(other, 2) == sessions.SharedPool.FOREIGN


def test_env_without_global_pools_falls_back_to_own_pools(pool):
    ort = PoolOrt()
    ort.set_global_thread_pool_sizes = lambda intra, inter: None  # "works", makes no pool
    sessions.open_session(Path("a.onnx"), "cpu", 2, ort)
    sessions.open_session(Path("b.onnx"), "cpu", 2, ort)
    assert ort.shared == [False, False] and pool.size(ort, 2) is None


def test_option_errors_are_not_blamed_on_the_file(pool):
    ort = PoolOrt(has_api=False)

    def refuse(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : bad intra_op setting")

    ort.InferenceSession = refuse
    with pytest.raises(ConfigError, match="not at fault") as info:
        sessions.open_session(Path("a.onnx"), "cpu", 2, ort)
    assert "truncated" not in str(info.value) and "INVALID_ARGUMENT" in str(info.value)


def test_real_generator_sessions_share_the_pool(momask_bundle):
    import onnxruntime

    gen = Generator(momask_bundle, device="cpu", threads=1)
    again = Generator(momask_bundle, device="cpu", threads=1)
    # Shared unless this test process loaded bpy before any session (then none is claimed).
    want = sessions.SHARED_POOL.size(onnxruntime, 1) is not None
    for g in (gen, again):
        assert [not s.get_session_options().use_per_session_threads
                for s in g.sessions.values()] == [want] * len(g.sessions)
    assert np.array_equal(gen.generate("a person walks", seconds=2.0).tokens[0],
                          again.generate("a person walks", seconds=2.0).tokens[0])


def test_a_session_that_does_not_claim_leaves_the_size_to_the_next(pool):
    ort = PoolOrt()
    # the exporter's check:
    sessions.open_session(Path("a.onnx"), "cpu", None, ort, claim_pool=False)
    assert ort.pools is None and ort.shared == [False]
    sessions.open_session(Path("b.onnx"), "cpu", 3, ort)  # the runtime sizes the pool
    sessions.open_session(Path("c.onnx"), "cpu", None, ort, claim_pool=False)  # then shares it
    assert ort.pools == (3, 1) and ort.shared == [False, True, True]
