"""The HumanML3D-layout reader: parsing, shapes, and errors that name file, line and problem."""

from __future__ import annotations

import numpy as np
import pytest

from hmu_core.data.humanml3d import HumanML3D, parse_caption_line
from hmu_core.errors import DataError


def test_reads_ids_captions_and_motions(tiny_dataset):
    data = HumanML3D(tiny_dataset)
    assert data.has_motions
    assert data.ids("train") == ["000001", "000002", "000003", "M000001"]
    assert data.ids("all.txt")[-1] == "M000001"
    caps = data.captions("000003")
    assert [c.text for c in caps] == [
        "a person walks then punches the air.", "a person jabs twice."]
    assert caps[0].tokens[2] == ("walk", "VERB")
    assert caps[0].whole_clip and not caps[1].whole_clip
    assert (caps[1].start, caps[1].end) == (1.0, 4.0)
    assert caps[1].frame_span(120) == (20, 80)
    assert data.features("000003").shape == (120, 263)
    assert data.features("000003").dtype == np.float32
    assert data.joints("000003").shape == (120, 22, 3)
    assert data.mean().shape == data.std().shape == (263,)


def test_nan_time_tags_read_as_zero(tiny_dataset):
    caption = HumanML3D(tiny_dataset).captions("000002")[1]
    assert (caption.start, caption.end) == (0.0, 0.0)
    assert caption.whole_clip


def test_span_end_zero_means_clip_end():
    caption = parse_caption_line("a b#a/DET b/NOUN#2.0#0.0")
    assert caption.frame_span(100) == (40, 100)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("a man walks#a/DET man/NOUN walk/VERB#0.0", "expected 4 '#'-separated fields"),
        ("a man walks#a/DET man walk/VERB#0.0#0.0", "token 'man' is not of the form word/POS"),
        ("a man walks#a/DET#zero#0.0", "start time 'zero' is not a number"),
        ("a man walks#a/DET#0.0#-1", "end time '-1' must be a finite number >= 0"),
        ("#a/DET#0.0#0.0", "the caption field is empty"),
    ],
)
def test_malformed_line_names_file_line_and_problem(tiny_dataset, line, problem):
    path = tiny_dataset / "texts" / "000004.txt"
    path.write_text("a person waves.#a/DET person/NOUN wave/VERB#0.0#0.0\n" + line + "\n")
    with pytest.raises(DataError) as exc:
        HumanML3D(tiny_dataset).captions("000004")
    message = str(exc.value)
    assert f"{path} line 2" in message
    assert problem in message


def test_missing_inputs_are_named(tiny_dataset, tmp_path):
    data = HumanML3D(tiny_dataset)
    with pytest.raises(DataError, match=r"caption file .*999999\.txt is missing"):
        data.captions("999999")
    with pytest.raises(DataError, match=r"split file .*nosuch\.txt is missing"):
        data.ids("nosuch")
    with pytest.raises(DataError, match=r"motion file .*999999\.npy is missing"):
        data.features("999999")
    with pytest.raises(DataError, match="does not exist"):
        HumanML3D(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"texts.* is missing"):
        HumanML3D(tmp_path / "empty")


def test_bad_split_files(tiny_dataset):
    (tiny_dataset / "dup.txt").write_text("000001\n000002\n000001\n")
    with pytest.raises(DataError, match=r"dup\.txt line 3: id 000001 is listed twice"):
        HumanML3D(tiny_dataset).ids("dup")
    (tiny_dataset / "blank.txt").write_text("\n\n")
    with pytest.raises(DataError, match="lists no ids"):
        HumanML3D(tiny_dataset).ids("blank")


def test_bad_motion_files(tiny_dataset):
    np.save(tiny_dataset / "new_joint_vecs" / "000004.npy", np.zeros((10, 251), np.float32))
    with pytest.raises(DataError, match=r"000004\.npy: expected shape \(frames, 263\)"):
        HumanML3D(tiny_dataset).features("000004")
    nan = np.zeros((10, 263), np.float32)
    nan[3, 5] = np.nan
    np.save(tiny_dataset / "new_joint_vecs" / "000004.npy", nan)
    with pytest.raises(DataError, match="NaN"):
        HumanML3D(tiny_dataset).features("000004")
    assert HumanML3D(tiny_dataset).features("000004", check_finite=False).shape == (10, 263)
    np.save(tiny_dataset / "new_joints" / "000004.npy", np.zeros((10, 24, 3), np.float32))
    with pytest.raises(DataError, match=r"expected shape \(frames, 22, 3\)"):
        HumanML3D(tiny_dataset).joints("000004")
    np.save(tiny_dataset / "Std.npy", np.zeros(263, np.float32))
    with pytest.raises(DataError, match="> 0"):
        HumanML3D(tiny_dataset).std()


def test_captions_only_directory(tiny_captions_only):
    data = HumanML3D(tiny_captions_only)
    assert not data.has_motions
    assert len(data.captions("000001")) == 2
    with pytest.raises(DataError, match="captions-only"):
        data.features("000001")
