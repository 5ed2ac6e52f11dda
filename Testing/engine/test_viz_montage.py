"""Overlay montage: what the picture says is visible (row explanations not hidden under other panels)."""

from __future__ import annotations

import matplotlib
import numpy as np
import synthetic

from organsegbench.viz.montage import overlay_montage

matplotlib.use("Agg")


def test_disagreement_row_is_explained_and_its_counts_are_not_hidden(tmp_path, monkeypatch, rng):
    from matplotlib.figure import Figure

    shape = (12, 40, 48)
    ct = synthetic.image(rng.normal(0, 50, shape).astype(np.int16), (0.8, 0.8, 3.0))
    a = synthetic.sphere(shape, (6, 20, 24), 8).astype(np.uint8)
    b = synthetic.sphere(shape, (6, 20, 26), 8).astype(np.uint8)
    saved = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *args, **kw: (saved.append(fig), real(fig, *args, **kw)))
    out = overlay_montage(ct, synthetic.image(a, (0.8, 0.8, 3.0)), synthetic.image(b, (0.8, 0.8, 3.0)),
                          tmp_path / "m.png", {1: "liver"}, n_slices=3, title="custom title")
    assert out.stat().st_size > 0
    fig = saved[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    assert "custom title" in fig._suptitle.get_text() and "bottom row" in fig._suptitle.get_text()
    top = [ax for ax in fig.axes if ax.get_title().startswith("slice")]
    counts = [t for ax in fig.axes for t in [ax.title, *ax.texts] if t.get_text().startswith("disagree")]
    assert len(top) == 3 and len(counts) == 3
    for text in counts:
        box = text.get_window_extent(renderer)
        assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in top), text.get_text()
