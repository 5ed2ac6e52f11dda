"""Interactive prompting on slicer-core: a kept-loaded `organsegbench serve` worker answers ROI box prompts;
the volume is written once while it does not change; a second box decodes only; failures and cancel."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import synthetic

from organsegbench.errors import OrganSegBenchError

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))  # tiny_models


@pytest.fixture
def server(mrml_scene, tmp_path, model_env):
    from OrganSegBenchLib import nodes
    from OrganSegBenchLib.model_server import ModelServer
    from tiny_models import ct_volume, save_tiny_sam

    vol = nodes.volume_node_from_image(synthetic.image(ct_volume(shape=(4, 48, 64)), (0.8, 0.8, 2.5)), "ct")
    log: list[str] = []
    srv = ModelServer("sam", weights=str(save_tiny_sam(tmp_path / "tiny.pth")), device="cpu", log=log.append)
    yield srv, vol, log
    srv.stop()


def _box_request(mrml_scene, vol):
    """A liver box on slice 1 of ``vol`` drawn as a Markups ROI (returns the request and the ROI)."""
    import vtk
    from OrganSegBenchLib.segment_run import SegmentRequest

    m = vtk.vtkMatrix4x4()
    vol.GetIJKToRASMatrix(m)
    roi = mrml_scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    roi.SetCenter(*m.MultiplyPoint([30, 20, 1, 1.0])[:3])
    roi.SetSize(16.0, 12.0, 2.0)
    return SegmentRequest(model="sam", volume_node=vol, prompt="box", roi_node=roi, structure="liver",
                          mode="prompted"), roi


def _wait(srv, n=1, timeout=120.0):
    done, end = [], time.monotonic() + timeout
    while len(done) < n:
        assert time.monotonic() < end, "no reply in time"
        done += srv.poll()
        time.sleep(0.05)
    return done


def test_boxes_are_answered_by_one_worker_that_keeps_the_volume(server, mrml_scene):
    from OrganSegBenchLib import segments

    srv, vol, log = server
    req, roi = _box_request(mrml_scene, vol)
    srv.submit(req)
    (r1, out1, reply1), = _wait(srv)
    node = srv.finish(r1, out1, reply1)
    assert [i["name"] for i in segments.segment_infos(node)] == ["liver"]
    assert reply1["embedding_cache"]["slices_encoded"] == 1 and not out1.exists()
    pid = srv.process.pid
    roi.SetSize(10.0, 8.0, 2.0)  # the user redraws the box on the same slice
    srv.submit(req)
    (r2, out2, reply2), = _wait(srv)
    srv.finish(r2, out2, reply2)
    assert srv.process.pid == pid  # the same worker
    assert reply2["embedding_cache"]["slices_encoded"] == 0 and reply2["image_reads"] == 1
    assert len(list(srv.work_dir.glob("volume_*.nii.gz"))) == 1  # written once
    from OrganSegBenchLib import nodes

    nodes.volume_node_from_image(synthetic.image(np.zeros((4, 48, 64), np.int16), (0.8, 0.8, 2.5)), "ct",
                                 node=vol)  # the volume is edited
    srv.submit(req)
    (r3, out3, reply3), = _wait(srv)
    srv.finish(r3, out3, reply3)
    assert reply3["image_reads"] == 2  # the volume changed: written and read again
    assert any("worker" in line for line in log)


def test_a_failing_request_reports_and_the_worker_stays(server, mrml_scene):
    from OrganSegBenchLib.segment_run import SegmentRequest

    srv, vol, _ = server
    bad = SegmentRequest(model="sam", volume_node=vol, prompt="text", text=["liver"])
    srv.submit(bad)
    (r, out, reply), = _wait(srv)
    with pytest.raises(OrganSegBenchError):
        srv.finish(r, out, reply)
    assert srv.is_running()
    with pytest.raises(OrganSegBenchError, match="automatic"):
        srv.submit(SegmentRequest(model="sam", volume_node=vol, prompt="automatic"))


def test_cancel_kills_the_worker_and_the_next_request_starts_a_new_one(server, mrml_scene):
    srv, vol, log = server
    req, _ = _box_request(mrml_scene, vol)
    srv.submit(req)
    first = srv.process
    srv.cancel()
    assert not first.is_running() and srv.pending == {} and "model worker stopped (cancel)" in log
    srv.submit(req)
    (r, out, reply), = _wait(srv)
    assert reply["ok"] and srv.process is not first
    srv.finish(r, out, reply)
