"""Auto-prompt on synthetic LPTEM videos: how many particles are tracked, how many tracks are false.

For each preset (thin 5 nm, medium 50 nm, thick 150 nm liquid) ``--videos`` videos of
1024 x 1024 px with 4 particles (``samem synth --preset P --frames 150 --size 1024
--particles 4 --seed S``; generated once into ``--videos-dir`` by
``bench_accuracy.held_out_video``) are run through the real pipeline exactly as
``samem serve --auto-prompt`` does (the shipped model, a :class:`Session` with
``auto_prompt=True``, the ``configs/serve.yaml`` settings plus ``--set`` overrides; prompts
on frame 4, faint particles confirmed on frame 9), or with ``--offline`` as ``samem analyze
--auto-prompt`` does (the detector on the first frames given in reverse, every box prompted
on frame 0), but on the first ``--frames`` frames only (speed). Scoring against the truth label images of
the video (the visible pixels of each particle: its centroid and area):

* a track (an id reported present on at least one frame) is *true* when, on most of the frames
  where it is reported present, its position lies within one equivalent radius
  sqrt(area / pi) of the same truth particle (visible on that frame); a second track on a
  particle that already has one is a duplicate and counts as false, as does every other track;
* a truth particle visible on one of the first ``--within`` frames is *tracked* when a true
  track on it is present, and within its radius, on one of those frames.

Per preset it prints the fraction of particles tracked within ``--within`` frames and the
false tracks per 10 true ones, pooled over the videos, with the mean and the worst video.

Seeds: ``--seeds tuning`` (2001 + 10 k thin, 2002 + 10 k medium, 2003 + 10 k thick: choose
settings on these) or ``--seeds held-out`` (1001 + 10 k, 1002 + 10 k, 1003 + 10 k: run once, at
the end). Neither set was used in training. One torch thread; about 3 s per video on 2 cores.

    OMP_NUM_THREADS=1 python bench/bench_autoprompt.py --seeds tuning --videos 8 \\
        --out bench/records/autoprompt/autoprompt_tuning.json
    OMP_NUM_THREADS=1 python bench/bench_autoprompt.py --seeds tuning --set frames=3 --set threshold_sigma=5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import torch
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import held_out_seeds, held_out_video  # noqa: E402

PRESETS = ("thin", "medium", "thick")
TARGETS = {"thin": 0.95, "medium": 0.95, "thick": 0.85}  # issue 21; and <= 1 false per 10 true


def score(tracks: pd.DataFrame, truth: pd.DataFrame, within: int = 10) -> dict:
    """Match tracks to truth particles and count tracked particles and false tracks.

    Parameters
    ----------
    tracks : DataFrame
        Session table: ``frame, particle, x, y, present`` (px).
    truth : DataFrame
        Truth tracks: ``frame, particle, x, y, visible, area_px`` (px, px^2).
    within : int
        A particle counts as tracked when a true track holds it on one of frames
        ``0 .. within - 1``.

    Returns
    -------
    dict
        ``particles`` (visible on those frames), ``tracked``, ``true_tracks``,
        ``false_tracks``, ``tracks`` (per track: id, truth particle or None, first frame).
    """
    truth = truth[truth["visible"]].copy()
    truth["r"] = np.sqrt(truth["area_px"] / np.pi)
    by_frame = {f: g for f, g in truth.groupby("frame")}
    shown = tracks[tracks["present"].astype(bool) & tracks["x"].notna()]
    per_track = []
    for tid, g in shown.groupby("particle"):
        hits: dict[int, int] = {}
        near: dict[int, list[int]] = {}
        for row in g.itertuples():
            t = by_frame.get(row.frame)
            if t is None:
                continue
            d = np.hypot(t["x"].to_numpy() - row.x, t["y"].to_numpy() - row.y)
            for pid, ok in zip(t["particle"].to_numpy(), d <= t["r"].to_numpy()):
                if ok:
                    hits[int(pid)] = hits.get(int(pid), 0) + 1
                    near.setdefault(int(pid), []).append(int(row.frame))
        best = max(hits, key=hits.get) if hits else None
        match = best if best is not None and hits[best] > len(g) / 2 else None
        per_track.append(
            {
                "id": int(tid),
                "particle": match,
                "first": int(g["frame"].min()),
                "frames_present": len(g),
                "frames_on": hits.get(match, 0) if match is not None else 0,
                "first_on": min(near[match]) if match is not None else None,
            }
        )
    owner: dict[int, dict] = {}
    for t in sorted(per_track, key=lambda t: (t["first"], -t["frames_on"])):
        if t["particle"] is None:
            continue
        if t["particle"] in owner:
            t["duplicate"] = True
            continue
        owner[t["particle"]] = t
    visible = set(truth.loc[truth["frame"] < within, "particle"].astype(int))
    tracked = {p for p, t in owner.items() if p in visible and t["first_on"] < within}
    true_tracks = len(owner)
    return {
        "particles": len(visible),
        "tracked": len(tracked),
        "missed": sorted(visible - tracked),
        "true_tracks": true_tracks,
        "false_tracks": len(per_track) - true_tracks,
        "tracks": per_track,
    }


def visible_truth(video: Path, frames: int) -> pd.DataFrame:
    """Truth of the first ``frames`` frames from the label images: per frame and particle the
    centroid ``x, y`` (px) and ``area_px`` of its visible pixels. For a particle partly outside
    the frame the truth table's centre lies outside too, while a tracker can only report the
    visible part."""
    rows = []
    with h5py.File(video, "r") as f:
        labels = f["truth/labels"][:frames]
    for t, lab in enumerate(labels):
        ids = np.unique(lab[lab > 0])
        if not len(ids):
            continue
        area = ndimage.sum_labels(np.ones(lab.shape), lab, ids)
        centres = ndimage.center_of_mass(np.ones(lab.shape), lab, ids)
        for pid, a, (cy, cx) in zip(ids, area, centres):
            rows.append((t, int(pid), cx, cy, True, int(a)))
    return pd.DataFrame(rows, columns=["frame", "particle", "x", "y", "visible", "area_px"])


def run_video(video: Path, factory, settings: dict, frames: int, offline: bool = False) -> pd.DataFrame:
    """The session's trajectory table over the first ``frames`` frames of ``video``: as ``samem
    serve --auto-prompt`` runs it (the detector in the session, prompts on the frames where it
    has seen enough), or with ``offline`` as ``samem analyze --auto-prompt`` does (the boxes
    found beforehand on the first frames, followed back to frame 0 and prompted there)."""
    from samem.stream.offline import _first_frame_detections
    from samem.stream.session import Session

    with h5py.File(video, "r") as f:
        stack = f["frames"][:frames]
        px, dt = float(f.attrs["pixel_size_nm"]), float(f.attrs["frame_interval_s"])
    boxes, auto = None, True
    if offline:  # samem.stream.offline.analyze_video's first step, on the frames given here
        found = _first_frame_detections(stack, settings)
        if found:
            boxes, auto = (0, found), False
    session = Session(
        factory(), stack.shape[1:], px, dt, settings, boxes=boxes, auto_prompt=auto, keep_table=True
    )
    for i, frame in enumerate(stack):
        session.process(i, frame)
    return session.table()


def summarise(per_video: list[dict]) -> dict:
    """Pooled fraction tracked and false tracks per 10 true ones, with mean and worst video."""
    particles = sum(v["particles"] for v in per_video)
    tracked = sum(v["tracked"] for v in per_video)
    true = sum(v["true_tracks"] for v in per_video)
    false = sum(v["false_tracks"] for v in per_video)
    frac = [v["tracked"] / v["particles"] for v in per_video if v["particles"]]
    per10 = [10 * v["false_tracks"] / max(v["true_tracks"], 1) for v in per_video]
    return {
        "videos": len(per_video),
        "particles": particles,
        "tracked": tracked,
        "tracked_fraction": tracked / particles if particles else float("nan"),
        "tracked_fraction_mean_video": float(np.mean(frac)),
        "tracked_fraction_worst_video": float(np.min(frac)),
        "true_tracks": true,
        "false_tracks": false,
        "false_per_10_true": 10 * false / max(true, 1),
        "false_per_10_true_mean_video": float(np.mean(per10)),
        "false_per_10_true_worst_video": float(np.max(per10)),
    }


def _overrides(items: list[str]) -> dict:
    """``--set KEY=VALUE`` items as ``autoprompt.KEY`` overrides (samem's one override parser)."""
    from samem.config import parse_overrides

    return {f"autoprompt.{k}": v for k, v in parse_overrides(items, "--set", "threshold_sigma=5").items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", choices=("tuning", "held-out"), default="tuning")
    p.add_argument("--videos", type=int, default=8, help="videos per preset")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    p.add_argument("--frames", type=int, default=20, help="frames tracked per video")
    p.add_argument("--within", type=int, default=10, help="a particle must be tracked by this frame")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="autoprompt setting")
    p.add_argument("--model", default=None, help="model (default: the shipped one)")
    p.add_argument("--videos-dir", default="bench/results/videos")
    p.add_argument("--video-frames", type=int, default=150, help="frames of the generated videos")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--particles", type=int, default=4)
    p.add_argument("--offline", action="store_true", help="samem analyze's path (prompts on frame 0)")
    p.add_argument("--out", help="write all figures (pooled and per video) to this JSON file")
    args = p.parse_args(argv)

    from samem.stream.service import model_tracker_factory
    from samem.stream.settings import load_settings

    torch.set_num_threads(1)
    settings = load_settings(None, {"prompts.auto": True, "model.name": args.model, **_overrides(args.set)})
    factory, model_name = model_tracker_factory(settings["model"])
    report = {
        "seeds": args.seeds,
        "model": model_name,
        "autoprompt": dict(settings["autoprompt"]),
        "frames": args.frames,
        "within": args.within,
        "path": "offline (samem analyze)" if args.offline else "live (samem serve)",
        "presets": {},
    }
    t0 = time.monotonic()
    for preset in args.presets:
        per_video = []
        for seed in held_out_seeds(preset, args.videos, tuning=args.seeds == "tuning"):
            video = held_out_video(
                Path(args.videos_dir), preset, seed, args.video_frames, args.size, args.particles
            )
            table = run_video(video, factory, settings, args.frames, args.offline)
            s = score(table, visible_truth(video, args.frames), args.within)
            s["seed"] = seed
            per_video.append(s)
            print(
                f"  {preset} {seed}: tracked {s['tracked']}/{s['particles']} (missed {s['missed']}), "
                f"true {s['true_tracks']}, false {s['false_tracks']}",
                flush=True,
            )
        summary = summarise(per_video)
        report["presets"][preset] = {"summary": summary, "videos": per_video}
    report["seconds"] = time.monotonic() - t0
    print(
        f"\nauto-prompt, {report['path']}, {args.seeds} seeds, first {args.frames} frames, model {model_name}"
    )
    head = f"| preset | tracked within {args.within} frames (mean video, worst) |"
    print(head + " false per 10 true (mean video, worst) |")
    print("|---|---|---|")
    for preset, r in report["presets"].items():
        s = r["summary"]
        print(
            f"| {preset} | {s['tracked_fraction']:.2f} ({s['tracked']}/{s['particles']}; "
            f"{s['tracked_fraction_mean_video']:.2f}, {s['tracked_fraction_worst_video']:.2f}) "
            f"[target {TARGETS[preset]:.2f}] | {s['false_per_10_true']:.2f} ({s['false_tracks']} / "
            f"{s['true_tracks']}; {s['false_per_10_true_mean_video']:.2f}, "
            f"{s['false_per_10_true_worst_video']:.2f}) [target 1] |"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
