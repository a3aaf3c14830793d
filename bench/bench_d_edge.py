"""D error with and without the rows cut by the field's edge, on runs of ``bench_accuracy.py``.

For every ``PRESET_SEED_samem/results.h5`` in a bench_accuracy ``--out`` folder (and its video
in ``--videos-dir``), D's relative error per particle is computed as ``samem eval``'s
``d_rel_err_same_frames`` (true trajectory cut to the frames reported present), once as is and
once without the rows samem flags ``edge`` and the truth rows with the particle partly outside
the field (``inside`` False): what the statistics option ``exclude_edge: true`` would change.
Mean and worst particle per preset; particles left without a D are counted.

    python bench/bench_d_edge.py bench/results/accuracy_tuning --videos-dir bench/results/videos
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from samem.eval.evaluate import _d_rel_err, read_results, truth_boxes
from samem.synthetic import read_truth


def visible_and_shown(run: Path, video: Path):
    """``(truth, tt, shown)`` of one tracked video: its truth, the truth rows of the prompted
    particles while visible, and the rows samem reported present with a position."""
    truth = read_truth(video)
    ids = sorted(truth_boxes(video))
    tt = truth.tracks
    tt = tt[tt["visible"].astype(bool) & tt["particle"].isin(ids)]
    _, tracked = read_results(run / "results.h5")
    shown = tracked[tracked["present"].astype(bool)].dropna(subset=["x", "y"])
    return truth, tt, shown


def per_particle(run: Path, video: Path) -> tuple[list[float], list[float]]:
    """(with edge rows, without) relative D errors of one video's particles."""
    truth, tt, shown = visible_and_shown(run, video)
    px, dt = truth.pixel_size_nm, truth.frame_interval_s
    keys = ["frame", "particle"]
    _, with_edge = _d_rel_err(tt.merge(shown[keys].drop_duplicates(), on=keys), shown, px, dt)
    inner = shown[~shown["edge"].astype(bool)].drop(columns=["edge"])
    t_inner = tt[tt["inside"].astype(bool)].merge(inner[keys].drop_duplicates(), on=keys)
    _, no_edge = _d_rel_err(t_inner, inner, px, dt)
    return list(with_edge.values()), list(no_edge.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", help="a bench_accuracy --out folder")
    ap.add_argument("--videos-dir", default="bench/results/videos")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    out = {}
    for preset in ("thin", "medium", "thick"):
        a, b = [], []
        for run in sorted(Path(args.runs).glob(f"{preset}_*_samem")):
            seed = run.name.split("_")[1]
            videos = sorted(Path(args.videos_dir).glob(f"{preset}_{seed}_*px_*f.h5"))
            if not videos:
                continue
            x, y = per_particle(run, videos[0])
            a += x
            b += y
        if a:
            out[preset] = {
                "particles": len(a),
                "d_rel_err_same_frames": float(np.nanmean(a)),
                "without_edge_rows": float(np.nanmean(b)),
                "worst": float(np.nanmax(a)),
                "worst_without_edge_rows": float(np.nanmax(b)),
                "no_d_without_edge_rows": int(np.isnan(b).sum()),
            }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
