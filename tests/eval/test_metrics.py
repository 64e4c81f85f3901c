"""T2M metrics vs the official ``utils/metrics.py`` outputs stored in t2m_metrics.npz, the
MM-Notox accountings, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hmu_core.errors import ConfigError, DataError
from hmu_core.eval import metrics

F32_SUM = 1e-5
"""Relative tolerance of float32 norms and sums of tens to hundreds of terms: the official
values were computed with another CPU's BLAS and summation order, and such a result is only
good to about n * eps (eps 1.2e-7), so an ulp-level (1e-7) comparison passes only on the machine
that wrote the fixture. float64 results (FID) keep their 1e-9."""

@pytest.fixture(scope="module")
def ref(conformance_dir: Path) -> dict[str, np.ndarray]:
    with np.load(conformance_dir / "t2m_metrics.npz") as npz:
        return {k: npz[k] for k in npz.files}


def test_distance_matrix_and_r_precision(ref: dict[str, np.ndarray]) -> None:
    text, motion = ref["rprec_text_emb"], ref["rprec_motion_emb"]
    dist = metrics.euclidean_distance_matrix(text[:32], motion[:32])
    assert dist.dtype == np.float32
    err_dist = np.abs(dist - ref["rprec_batch0_dist_matrix"]).max()
    counts = sum(metrics.r_precision_counts(text[i:i + 32], motion[i:i + 32])
                 for i in (0, 32, 64))
    top123 = metrics.r_precision(text, motion)
    print(f"distance matrix max abs error {err_dist:.3g}")
    assert err_dist <= 1e-5
    np.testing.assert_array_equal(counts, ref["rprec_top3_counts"])
    np.testing.assert_allclose(top123, ref["rprec_top123"], rtol=0, atol=1e-12)


def test_matching_score(ref: dict[str, np.ndarray]) -> None:
    value = metrics.matching_score(ref["rprec_text_emb"], ref["rprec_motion_emb"])
    print(f"matching score error {value - float(ref['matching_score']):.3g}")
    assert value == pytest.approx(float(ref["matching_score"]), rel=F32_SUM)
    per_pair = np.linalg.norm(ref["rprec_text_emb"][:32] - ref["rprec_motion_emb"][:32], axis=1)
    np.testing.assert_allclose(per_pair, ref["matching_score_per_pair_batch0"], rtol=F32_SUM)


def test_fid(ref: dict[str, np.ndarray]) -> None:
    value = metrics.fid(ref["fid_gt_emb"], ref["fid_gen_emb"])
    swapped = metrics.fid(ref["fid_gen_emb"], ref["fid_gt_emb"])
    print(f"FID error {value - float(ref['fid']):.3g}, "
          f"swapped {swapped - float(ref['fid_swapped_args']):.3g}")
    assert value == pytest.approx(float(ref["fid"]), rel=1e-9)
    assert swapped == pytest.approx(float(ref["fid_swapped_args"]), rel=1e-9)
    assert metrics.fid(ref["fid_gt_emb"], ref["fid_gt_emb"]) == pytest.approx(0.0, abs=1e-6)


def test_fid_retries_a_non_finite_sqrtm_with_the_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sqrtm = metrics.linalg.sqrtm
    calls: list[np.ndarray] = []

    def flaky_sqrtm(matrix: np.ndarray) -> np.ndarray:
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(metrics.linalg, "sqrtm", flaky_sqrtm)
    sigma = np.diag([1.0, 4.0])
    value = metrics.frechet_distance(np.zeros(2), sigma, np.ones(2), sigma)
    offset = sigma + 1e-6 * np.eye(2)
    np.testing.assert_allclose(calls[1], offset @ offset)
    assert value == pytest.approx(2.0 + 2 * 5.0 - 2 * (5.0 + 2e-6), abs=1e-9)


def test_diversity_and_multimodality_official_draws(ref: dict[str, np.ndarray]) -> None:
    rng = np.random.RandomState(0)  # == np.random.seed(0) of the official run
    np.testing.assert_array_equal(rng.choice(400, 300, replace=False), ref["diversity_first_idx"])
    np.testing.assert_array_equal(rng.choice(400, 300, replace=False), ref["diversity_second_idx"])
    div = metrics.diversity(ref["fid_gen_emb"], np.random.RandomState(0), 300)
    mm = metrics.multimodality(ref["mm_emb"], np.random.RandomState(1), 10)
    print(f"diversity error {div - float(ref['diversity_300']):.3g}, "
          f"multimodality error {mm - float(ref['multimodality_10']):.3g}")
    assert div == pytest.approx(float(ref["diversity_300"]), rel=F32_SUM)
    assert mm == pytest.approx(float(ref["multimodality_10"]), rel=F32_SUM)
    # Default size follows MoMask (300 above 300 samples); a Generator is reproducible too.
    emb = ref["fid_gen_emb"]
    assert metrics.diversity(emb, np.random.default_rng(5)) == \
        metrics.diversity(emb, np.random.default_rng(5), 300)
    assert metrics.diversity(emb, np.random.default_rng(5)) != \
        metrics.diversity(emb, np.random.default_rng(6))


def test_mm_notox_accountings() -> None:
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((64, 4)).astype(np.float32)
    motion = rng.standard_normal((64, 4)).astype(np.float32)
    dist = np.linalg.norm(clean - motion, axis=1)
    changed = np.zeros(64, bool)
    changed[3] = True  # only the first pool of 32 holds a toxic caption
    assert metrics.mm_notox(clean, motion) == pytest.approx(dist.mean(), rel=F32_SUM)
    official = metrics.mm_notox(clean, motion, changed, accounting="official")
    assert official == pytest.approx(dist[:32].sum() / 64, rel=F32_SUM)
    changed[40] = True
    assert metrics.mm_notox(clean, motion, changed, accounting="official") == \
        pytest.approx(dist.mean(), rel=F32_SUM)
    with pytest.raises(DataError, match="changed"):
        metrics.mm_notox(clean, motion, accounting="official")
    with pytest.raises(ConfigError):
        metrics.mm_notox(clean, motion, changed, accounting="toxic")  # type: ignore[arg-type]


def test_mean_ci95_matches_get_metric_statistics() -> None:
    values = np.array([[0.5, 0.7], [0.52, 0.69], [0.49, 0.72], [0.51, 0.70]])
    mean, ci = metrics.mean_ci95(values)
    np.testing.assert_allclose(mean, values.mean(axis=0))
    np.testing.assert_allclose(ci, 1.96 * values.std(axis=0) / 2.0)
    mean, ci = metrics.mean_ci95([1.0, 2.0, 3.0])
    assert float(mean) == 2.0 and float(ci) == pytest.approx(1.96 * np.sqrt(2 / 3) / np.sqrt(3))


def test_bad_inputs_raise_hmu_errors(ref: dict[str, np.ndarray]) -> None:
    text, motion = ref["rprec_text_emb"], ref["rprec_motion_emb"]
    with pytest.raises(DataError, match="drop_last"):
        metrics.r_precision(text[:40], motion[:40])
    with pytest.raises(DataError):
        metrics.matching_score(text, motion[:, :16])
    with pytest.raises(ConfigError):
        metrics.r_precision(text, motion, pool_size=0)
    with pytest.raises(DataError, match="more than"):
        metrics.diversity(text, np.random.RandomState(0))  # 96 samples, default size 100
    with pytest.raises(DataError):
        metrics.multimodality(ref["mm_emb"], np.random.RandomState(0), 30)
    with pytest.raises(ConfigError):
        metrics.diversity(text, 0, 10)  # type: ignore[arg-type]
    with pytest.raises(DataError):
        metrics.fid(text[:1], motion[:1])
    with pytest.raises(DataError):
        metrics.mean_ci95([])
