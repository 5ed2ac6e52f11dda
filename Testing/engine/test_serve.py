"""`organsegbench serve`: a persistent worker keeps the model, the image and the embeddings between requests."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import synthetic
from tiny_models import ct_volume, save_tiny_sam

from organsegbench.cli import main
from organsegbench.io import read_image, write_image
from organsegbench.prompts import Box2D, PromptSet
from organsegbench.serve import SegmentServer, parse_reply

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.models


@pytest.fixture
def setup(tmp_path, model_env):
    ct = tmp_path / "ct.nii.gz"
    write_image(synthetic.image(ct_volume(), spacing_xyz=(0.8, 0.8, 2.5)), ct)
    return ct, save_tiny_sam(tmp_path / "tiny.pth")


def _request(rid, ct, out, box, **extra):
    ps = PromptSet(boxes=[Box2D(*box, label=1, name="liver")])
    return json.dumps({"id": rid, "op": "segment", "image": str(ct), "prompts": ps.to_dict(), "out": str(out),
                       **extra})


def test_second_box_on_the_same_slice_decodes_only_and_matches_the_cli(setup, tmp_path):
    from organsegbench.models import registry

    ct, weights = setup
    model = registry.create("sam", weights=str(weights), device="cpu")
    lines = "\n".join([_request("a", ct, tmp_path / "a.nii.gz", (1, 14, 10, 40, 30)),
                       _request("b", ct, tmp_path / "b.nii.gz", (1, 5, 5, 30, 25)),
                       json.dumps({"id": "p", "op": "ping"})]) + "\n"
    out = io.StringIO()
    assert SegmentServer(model).serve(io.StringIO(lines), out) == 0
    replies = [r for r in map(parse_reply, out.getvalue().splitlines()) if r is not None]
    assert replies[0]["ready"] is True
    a, b, ping = replies[1:]
    assert a["ok"] and b["ok"] and a["labels"] == {"1": "liver"}
    assert a["embedding_cache"]["slices_encoded"] == 1 and b["embedding_cache"]["slices_encoded"] == 0
    assert b["image_reads"] == 1 and ping["requests"] == 3
    assert main(["segment", str(ct), "--model", "sam", "--weights", str(weights), "--box", "1,5,5,30,25",
                 "--name", "liver", "--device", "cpu", "--no-progress", "--embedding-cache-gb", "0",
                 "--out", str(tmp_path / "cli.nii.gz")]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "b.nii.gz").array, read_image(tmp_path / "cli.nii.gz").array)


def test_bad_requests_are_answered_and_the_worker_goes_on(setup, tmp_path):
    from organsegbench.models import registry

    ct, weights = setup
    lines = "\n".join(["not json", json.dumps({"id": 1, "op": "fly"}),
                       json.dumps({"id": 2, "op": "segment", "image": str(tmp_path / "missing.nii.gz"),
                                   "out": str(tmp_path / "x.nii.gz")}),
                       _request(3, ct, tmp_path / "y.nii.gz", (9, 1, 1, 5, 5)),
                       json.dumps({"id": 4, "op": "shutdown"}), json.dumps({"id": 5, "op": "ping"})]) + "\n"
    out = io.StringIO()
    SegmentServer(registry.create("sam", weights=str(weights), device="cpu")).serve(io.StringIO(lines), out)
    replies = [r for r in map(parse_reply, out.getvalue().splitlines()) if r is not None][1:]
    assert [r["ok"] for r in replies] == [False, False, False, False, True]
    assert "not a JSON request" in replies[0]["error"] and "segment, ping or shutdown" in replies[1]["hint"]
    assert "does not exist" in replies[2]["error"]
    assert "slice 9" in replies[3]["error"] or "outside" in replies[3]["error"]  # box off the 4-slice image
    assert replies[4]["shutdown"] is True and len(replies) == 5  # nothing answered after shutdown
    assert not (tmp_path / "y.nii.gz").exists()


def test_worker_process_answers_over_stdin_and_stops_on_shutdown(setup, tmp_path):
    from organsegbench.runner import BackgroundProcess, engine_command

    ct, weights = setup
    proc = BackgroundProcess(engine_command("serve", "--model", "sam", "--weights", weights, "--device", "cpu"),
                             interactive=True)
    proc.start()
    try:
        def next_reply(timeout=120.0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                for line in proc.poll():
                    reply = parse_reply(line)
                    if reply is not None:
                        return reply
                time.sleep(0.05)
            raise AssertionError("no reply:\n" + "\n".join(proc.log[-20:]))

        assert next_reply()["ready"] is True
        proc.send(_request("a", ct, tmp_path / "a.nii.gz", (1, 14, 10, 40, 30)))
        reply = next_reply()
        assert reply["ok"] and (tmp_path / "a.nii.gz").exists(), reply
        proc.send(json.dumps({"id": "s", "op": "shutdown"}))
        assert next_reply()["shutdown"] is True
        assert proc.wait(timeout=60) == 0
    finally:
        proc.cancel()


def test_the_worker_windows_a_volume_once_and_again_after_an_edit(setup, tmp_path, monkeypatch):
    from organsegbench.models import registry, slicewise

    ct, weights = setup
    calls = []
    real = slicewise.window_to_uint8
    monkeypatch.setattr(slicewise, "window_to_uint8", lambda *a, **k: calls.append(1) or real(*a, **k))
    srv = SegmentServer(registry.create("sam", weights=str(weights), device="cpu"))
    for i in range(2):
        assert srv.handle(json.loads(_request(i, ct, tmp_path / f"{i}.nii.gz", (1, 14, 10, 40, 30))))["ok"]
    assert len(calls) == 1
    image = next(iter(srv.images.values()))
    image.array[1:3] += 100  # edited in place: the memo must not serve the old windowing
    assert srv.handle(json.loads(_request(9, ct, tmp_path / "9.nii.gz", (1, 14, 10, 40, 30))))["ok"]
    assert len(calls) == 2
