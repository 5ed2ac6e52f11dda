"""Segment tab logic on slicer-core: ROI prompt -> background model run -> segments; cancel; failures.

The model is a stand-in adapter injected into the project CLI (``organsegbench segment``) so the whole path
(input file, prompt file, child process, progress bar, output file, import with terminology) runs without torch.
"""

from __future__ import annotations

import sys
import textwrap
import time

import numpy as np
import pytest
import synthetic

from organsegbench.errors import OrganSegBenchError

FAKE_MODEL = textwrap.dedent("""
    import sys, time
    import numpy as np
    from organsegbench import cli
    from organsegbench.models import registry
    from organsegbench.models.protocol import ModelResult

    class BoxFiller:
        def __init__(self, **kwargs):
            pass

        def segment(self, image, prompts, output="prompted", slice_range=None, out=None, progress=None, **kw):
            out_arr = np.zeros(image.shape, np.uint8)
            for i, b in enumerate(prompts.boxes):
                out_arr[b.slice, int(b.y0):int(b.y1) + 1, int(b.x0):int(b.x1) + 1] = 1
                progress(i + 1, len(prompts.boxes))
            if MODE == "hang":
                print("HANGING", flush=True)
                time.sleep(600)
            result = ModelResult(image.with_array(out_arr), {1: "liver"}, {"model": "box-filler"})
            result.write(out)
            return result

    MODE = sys.argv[1]
    registry.get = lambda name: BoxFiller
    sys.exit(cli.main(sys.argv[2:]))
""")


def _setup(mrml_scene):
    from OrganSegBenchLib import nodes

    vol = nodes.volume_node_from_image(synthetic.image(np.zeros((10, 30, 40), np.int16), (1.0, 1.0, 2.0)), "ct")
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(-20.0, -15.0, 9.0)
    roi.SetSize(10.0, 6.0, 4.0)
    return vol, roi


def _job(vol, roi, tmp_path, log):
    from OrganSegBenchLib.segment_run import SegmentJob, SegmentRequest

    req = SegmentRequest(model="box-filler", volume_node=vol, prompt="box", roi_node=roi, structure="liver",
                         mode="prompted")
    return SegmentJob(req, work_dir=tmp_path / "work", log=log)


def test_box_prompt_run_imports_named_coded_segment(mrml_scene, tmp_path) -> None:
    from OrganSegBenchLib import nodes, segments

    vol, roi = _setup(mrml_scene)
    log: list[str] = []
    job = _job(vol, roi, tmp_path, log.append)
    cmd = job.command()
    assert cmd[1:4] == ["-m", "organsegbench", "segment"] and "--prompts" in cmd and "--slices" not in cmd
    seg_node = job.run_blocking(command=[sys.executable, "-c", FAKE_MODEL, "ok", *cmd[3:]], timeout_s=120)
    infos = segments.segment_infos(seg_node)
    assert [i["name"] for i in infos] == ["liver"]
    assert infos[0]["codes"]["type"] is not None  # terminology from the structure catalogue
    lm, _ = nodes.labelmap_image_from_segmentation(seg_node, vol)
    expected = np.zeros((10, 30, 40), bool)
    expected[4:6, 12:19, 15:26] = True  # the ROI's voxel box (see test_roi_to_voxel_box_per_slice_and_clipping)
    np.testing.assert_array_equal(lm.array > 0, expected)
    assert job.progress == pytest.approx(1.0)


def test_cancel_during_a_run_kills_it_and_reports(mrml_scene, tmp_path) -> None:
    vol, roi = _setup(mrml_scene)
    log: list[str] = []
    job = _job(vol, roi, tmp_path, log.append)
    cmd = job.command()
    proc = job.start(command=[sys.executable, "-c", FAKE_MODEL, "hang", *cmd[3:]])
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while not any("HANGING" in line for line in lines):  # may share a line with the progress bar (carriage returns)
        assert time.monotonic() < deadline and proc.returncode is None, lines
        lines += job.poll()
        time.sleep(0.05)
    pid = proc.pid
    job.cancel()
    assert not job.is_running() and proc.returncode is not None
    import psutil

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "run cancelled" in log
    with pytest.raises(OrganSegBenchError, match="cancelled"):
        job.finish()
    assert not (tmp_path / "work" / "result.nii.gz").exists()


def test_failed_run_shows_the_child_error(mrml_scene, tmp_path) -> None:
    from OrganSegBenchLib.segment_run import SegmentJob, SegmentRequest

    vol, _ = _setup(mrml_scene)
    job = SegmentJob(SegmentRequest(model="no-such-model", volume_node=vol), work_dir=tmp_path / "w")
    with pytest.raises(OrganSegBenchError, match="exit status 2") as err:
        job.run_blocking(timeout_s=120)
    assert "unknown model 'no-such-model'" in str(err.value)


def test_bad_requests_are_refused_before_running(mrml_scene) -> None:
    from OrganSegBenchLib.segment_run import SegmentJob, SegmentRequest

    vol, _ = _setup(mrml_scene)
    with pytest.raises(OrganSegBenchError, match="text prompt is empty"):
        SegmentJob(SegmentRequest(model="sat", volume_node=vol, prompt="text", text=["  "]))
    with pytest.raises(OrganSegBenchError, match="no input volume"):
        SegmentJob(SegmentRequest(model="sat", volume_node=None))
    with pytest.raises(OrganSegBenchError, match="unknown prompt kind"):
        SegmentJob(SegmentRequest(model="sat", volume_node=vol, prompt="scribble"))
    far = slicer_roi(vol)
    job = SegmentJob(SegmentRequest(model="sam", volume_node=vol, prompt="box", roi_node=far))
    with pytest.raises(OrganSegBenchError, match="lies outside volume"):
        job.command()
    job.cleanup()


def slicer_roi(vol):
    roi = vol.GetScene().AddNewNodeByClass("vtkMRMLMarkupsROINode", "far")
    roi.SetCenter(900.0, 900.0, 900.0)
    roi.SetSize(5.0, 5.0, 5.0)
    return roi
