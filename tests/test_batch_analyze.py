"""samem batch with the real analyze pipeline (SAM 2 tiny model) on small synthetic videos.

The batch runs on a LocalCluster of 2 workers; every video's outputs must equal those of
``samem analyze`` run alone on it with the same options.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from samem.batch import MARKER, load_batch_config, run_batch
from samem.cli.main import main
from samem.synthetic import SynthParams, generate, write_h5

MODEL = "samem_tiny"  # configs/model/samem_tiny.yaml, seeded random initialisation
pytestmark = pytest.mark.filterwarnings("ignore:no checkpoint given:UserWarning")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for i in range(2):
        params = SynthParams.from_preset(
            "thin",
            frames=10,
            size=64,
            n_particles=2,
            seed=20 + i,
            pixel_size_nm=2.0,
            models={"brownian": 1.0},
        )
        paths.append(write_h5(generate(params), folder / f"movie{i}.h5"))
    return folder, paths


def _outputs(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != MARKER)


def test_batch_equals_analyze_alone(tmp_path, videos):
    folder, paths = videos
    cfg = load_batch_config(
        None,
        {
            "cluster.processes": False,
            "cluster.workers": 2,
            "torch_threads": 1,
            "summary.plot_formats": [],  # figures are tested in test_batch.py and test_analyze.py
        },
    )
    options = {"model": MODEL, "plots": False}
    result = run_batch([folder], tmp_path / "batch", auto_prompt=True, config=cfg, options=options)
    assert [r["status"] for r in result.rows] == ["done", "done"], result.rows
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the batch's workers: the same float reductions
    try:
        for p in paths:
            out = str(tmp_path / "alone" / p.stem)
            code = main(["analyze", str(p), "--auto-prompt", "--out", out, "--model", MODEL, "--no-plots"])
            assert code == 0
    finally:
        torch.set_num_threads(threads)
    for p in paths:
        b, a = tmp_path / "batch" / p.stem, tmp_path / "alone" / p.stem
        assert _outputs(b) == _outputs(a) and {"results.h5", "tracks.csv", "stats.json"} <= set(_outputs(a))
        tb, ta = pd.read_csv(b / "tracks.csv"), pd.read_csv(a / "tracks.csv")
        assert ta["particle"].nunique() >= 1 and len(ta) == 10 * ta["particle"].nunique()  # from frame 0
        pd.testing.assert_frame_equal(tb, ta, check_exact=False, rtol=1e-9, atol=1e-9)
        sb, sa = json.loads((b / "stats.json").read_text()), json.loads((a / "stats.json").read_text())
        assert sb == sa
        with h5py.File(b / "results.h5") as fb, h5py.File(a / "results.h5") as fa:
            np.testing.assert_array_equal(fb["labels"][()], fa["labels"][()])
            assert fb.attrs["pixel_size_nm"] == fa.attrs["pixel_size_nm"] == 2.0
    # the summary row describes the video as analyze saw it
    row = result.rows[0]
    stats = json.loads((tmp_path / "alone" / "movie0" / "stats.json").read_text())
    assert row["frames"] == 10 and row["D_unit"] == "nm^2/s"
    assert (
        row["particles"]
        == pd.read_csv(tmp_path / "alone" / "movie0" / "tracks.csv").query("present")["particle"].nunique()
    )
    if stats.get("ensemble", {}).get("D_mean_nm2_s") is not None:
        assert row["D_mean"] == pytest.approx(stats["ensemble"]["D_mean_nm2_s"], rel=1e-9)
