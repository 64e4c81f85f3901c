"""The bpy-free parts: the worker job (thread, progress, cancel, errors), the CUDA library
preloader, the provider message and action naming."""

from __future__ import annotations

import pytest

pytest.importorskip("bpy", reason="the add-on package imports bpy")

from blender_addon import cuda_libs
from blender_addon.job import GenerationJob, GenerationRequest
from blender_addon.ops_generate import provider_note
from exporter.scene.apply import action_base_name

pytestmark = pytest.mark.blender


def _request(bundle, **kw) -> GenerationRequest:
    return GenerationRequest(bundle=str(bundle), prompt=kw.pop("prompt", "a person waves"),
                             seconds=kw.pop("seconds", 2.0), seed=0, device="cpu", threads=1,
                             **kw)


def test_job_runs_in_a_thread_with_progress(default_bundle):
    job = GenerationJob(_request(default_bundle, variations=2))
    job.start()
    assert job.wait(120)
    assert job.error is None and job.progress == 1.0 and job.stage == "done"
    assert job.result.seeds == [0, 1] and len(job.result.motions) == 2
    assert job.result.provider == "CPUExecutionProvider"


def test_cancelled_job_drops_its_result(default_bundle):
    job = GenerationJob(_request(default_bundle, variations=3))
    job.cancel()
    job.start()
    assert job.wait(120) and job.result is None and job.error is None


def test_job_errors_are_messages_not_exceptions(default_bundle, tmp_path):
    job = GenerationJob(_request(default_bundle, seconds=60.0))
    job.start()
    assert job.wait(120) and job.result is None
    assert "choose a duration in range" in job.error
    missing = GenerationJob(_request(tmp_path / "nope"))
    missing.start()
    assert missing.wait(60) and "not a directory" in missing.error


def test_cuda_preload_loads_what_it_can_and_rejects_a_missing_folder(tmp_path):
    lib = tmp_path / "nvidia" / "cublas" / "lib"
    lib.mkdir(parents=True)
    (lib / "libbroken.so.13").write_bytes(b"not an ELF file")
    assert cuda_libs.library_dirs(tmp_path) == [tmp_path, lib]
    assert cuda_libs.preload(tmp_path) == []
    with pytest.raises(Exception, match="does not exist"):
        cuda_libs.preload(tmp_path / "missing")


def test_provider_note_is_visible_only_for_a_cuda_fallback():
    reason = "CUDA was requested but the session runs on CPUExecutionProvider: no usable GPU"
    assert provider_note("CPUExecutionProvider", reason, "cuda").startswith("CUDA not used")
    assert provider_note("CPUExecutionProvider", reason, "auto").startswith("CUDA not used")
    assert provider_note("CPUExecutionProvider", "this onnxruntime build has no CUDA provider "
                         "(install onnxruntime-gpu for CUDA)", "auto") == ""
    assert provider_note("CPUExecutionProvider", "cpu requested", "cpu") == ""
    assert provider_note("CUDAExecutionProvider", "", "cuda") == ""


def test_action_names_come_from_prompt_and_seed():
    assert action_base_name("A person, waving!", 7) == "hmu_a_person_waving_s7"
    assert action_base_name("???", 0) == "hmu_motion_s0"
