"""Accuracy of a model and the classical baseline on held-out synthetic LPTEM videos.

For each preset (thin 5 nm, medium 50 nm, thick 150 nm liquid) ``--videos`` videos are
generated with seeds never used in training (training draws from ``ClipStream`` seeds 0 and
10000; here seeds 1001 + 10 k for thin, 1002 + 10 k medium, 1003 + 10 k thick), tracked by
``samem eval`` (boxes from the truth's first frame) and scored. With 4 particles per video
one lost particle moves a video's mean IoU by ~0.25, so metrics are pooled over videos:
mean IoU, J&F, centroid error and D error are means over videos (D error: mean over all
particles whose track gave a D; the others are counted as n/a), ID switches are summed.
Prints a Markdown table and writes all metrics (pooled and per video) as JSON.

    python bench/bench_accuracy.py --model default --frames 300 --size 1024 --videos 3 --jobs 2

frames/s is per video, so with ``--jobs`` > 1 it is measured while other videos run beside it.

Tracker settings are chosen on *tuning* videos, never on the held-out ones: ``--seeds tuning``
uses seeds 2001 + 10 k (thin), 2002 + 10 k, 2003 + 10 k, also never used in training, e.g.

    python bench/bench_accuracy.py --seeds tuning --videos 2 --baseline none \
        --tracker smooth_frames=5 --out bench/results/tuning_smooth5

The targets of the default model (issue 21) are printed beside the numbers.

Records of runs on disjoint seeds (``--skip``) are pooled into one table, as if one run had
tracked all their videos (each video's metrics are kept in the records, so nothing is tracked
again), e.g. the 24 held-out videos per preset of three 8-video runs:

    python bench/bench_accuracy.py --pool bench/records/accuracy/accuracy_issue21_final.json \
        bench/records/accuracy/accuracy_k8_15.json bench/records/accuracy/accuracy_fresh.json \
        --out bench/results/pooled
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from samem.eval.evaluate import evaluate
from samem.synthetic import SynthParams, read_truth, write_h5
from samem.track.options import parse_options

PRESETS = {"thin": 1001, "medium": 1002, "thick": 1003}  # first held-out seed of each preset
VIDEOS = "bench/results/videos"  # generated videos, shared by every bench run (each made once)
TUNING_OFFSET = 1000  # tuning videos: seeds PRESETS + 1000 + 10 k
TARGETS = {  # iou, centroid px, id switches, D rel err, coverage (issue 21); wrong while present <= 1 %
    "thin": (0.85, 1.5, 0, 0.05, 0.97),
    "medium": (0.80, 2.5, 0, 0.07, 0.95),
    "thick": (0.72, 4.0, 0, 0.12, 0.90),
}
WRONG_TARGET = 0.01
POOLED = (
    "iou_mean",
    "jf_mean",
    "centroid_err_px",
    "centroid_err_nm",
    "d_rel_err",
    "coverage",
    "wrong_while_present",
    "centroid_err_worst_px",
    "present_when_gone",
    "mota",
    "idf1",
    "fps",
)


def held_out_seeds(preset: str, videos: int, tuning: bool = False, skip: int = 0) -> list[int]:
    """Seeds of the held-out videos of ``preset`` (its PRESETS seed + 10 k), or of its tuning
    videos; ``skip`` leaves out the first ones (k = skip .. skip + videos - 1)."""
    first = PRESETS[preset] + (TUNING_OFFSET if tuning else 0)
    return [first + 10 * k for k in range(skip, skip + videos)]


def held_out_video(folder: Path, preset: str, seed: int, frames: int, size: int, particles: int) -> Path:
    """The held-out video of ``preset`` with ``seed``, generated once into ``folder``."""
    video = Path(folder) / f"{preset}_{seed}_{size}px_{frames}f.h5"
    if not video.exists():
        video.parent.mkdir(parents=True, exist_ok=True)
        params = SynthParams.from_preset(preset, frames=frames, size=size, n_particles=particles, seed=seed)
        write_h5(params, video, progress=False)
    return video


def _nanmean(values) -> float:
    """Mean of the finite values; NaN when there are none."""
    a = np.asarray(values, float)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def pool(per_video: list[dict]) -> dict:
    """Metrics of several videos pooled as the module docstring says (per-video rows kept)."""
    # nanmean: present_when_gone is NaN for videos where no particle leaves the field
    out = {k: _nanmean([m[k] for m in per_video]) for k in POOLED if all(k in m for m in per_video)}
    out["id_switches"] = int(sum(m["id_switches"] for m in per_video))
    errs = np.array([e for m in per_video for e in m.get("d_rel_err_per_particle", {}).values()], float)
    if errs.size:  # particles whose track gave no D (lost) are counted, not averaged
        out["d_rel_err"] = _nanmean(errs)
        out["d_missing"] = int(np.isnan(errs).sum())
    same = [e for m in per_video for e in m.get("d_rel_err_same_frames_per_particle", {}).values()]
    if same:  # D error with the truth cut to the frames reported present (no gap sampling error)
        out["d_rel_err_same_frames"] = _nanmean(same)
    out["videos"] = [{k: v for k, v in m.items() if k != "iou_per_frame"} for m in per_video]
    out["worst"] = worst(per_video)
    kinds = iou_by_kind(per_video)
    if kinds["shape"]:
        out["iou_by_kind"] = kinds
    return out


def worst(per_video: list[dict]) -> dict:
    """The worst video (by mean centroid error, wrong-while-present, D error) and the worst
    particle over all videos (largest mean centroid error), so a mean cannot hide them."""
    out = {}
    for key, pick in (
        ("centroid_err_px", max),
        ("wrong_while_present", max),
        ("d_rel_err", max),
        ("coverage", min),
    ):
        rows = [(m[key], m["seed"]) for m in per_video if key in m and np.isfinite(m[key])]
        if rows:
            value, seed = pick(rows)
            out[key] = {"value": float(value), "seed": int(seed)}
    particles = [
        (err, m["seed"], pid)
        for m in per_video
        for pid, err in m.get("centroid_err_per_particle", {}).items()
    ]
    if particles:
        err, seed, pid = max(particles)
        out["particle_centroid_err_px"] = {"value": float(err), "seed": int(seed), "particle": pid}
    return out


def _evaluate_one(job: tuple[str, int], args: argparse.Namespace, threads: int) -> dict:
    preset, seed = job
    torch.set_num_threads(threads)
    video = held_out_video(Path(args.videos_dir), preset, seed, args.frames, args.size, args.particles)
    out = Path(args.out) / f"{preset}_{seed}_samem"
    kept = out / "results.h5"
    metrics = evaluate(
        video,
        out,
        results=kept if args.rescore and kept.exists() else None,
        model=args.model,
        mode=args.mode,
        baseline=args.baseline,
        tracker_options=args.tracker_options,
    )
    kinds = particle_kinds(video)
    return {name: {**m, "particle_kinds": kinds} for name, m in metrics.items()}


#: per-pixel SNR bins (the generator's ``snr``, each particle's median) of the IoU breakdown
SNR_BINS = (0.0, 0.4, 0.6, 0.8, 1.0, float("inf"))


def particle_kinds(video: Path) -> dict[str, dict]:
    """Each particle's shape and median per-pixel SNR (the generator's truth), by id."""
    truth = read_truth(video)
    snr = truth.tracks.groupby("particle")["snr"].median()
    return {
        str(int(row.particle)): {"shape": str(row.shape), "snr": float(snr.get(row.particle, np.nan))}
        for row in truth.particles.itertuples()
    }


def iou_by_kind(per_video: list[dict]) -> dict:
    """Mean and worst per-particle IoU of every particle shape and SNR bin, over the videos."""
    rows = [
        (kinds[pid]["shape"], kinds[pid]["snr"], iou)
        for m in per_video
        if (kinds := m.get("particle_kinds"))
        for pid, iou in m.get("iou_per_particle", {}).items()
        if pid in kinds
    ]

    def summary(values: list[float]) -> dict:
        return {"particles": len(values), "iou": float(np.mean(values)), "worst": float(np.min(values))}

    shapes = sorted({shape for shape, _, _ in rows})
    bins = zip(SNR_BINS[:-1], SNR_BINS[1:])
    return {
        "shape": {s: summary([i for shape, _, i in rows if shape == s]) for s in shapes},
        "snr": {
            f"{lo:g}-{hi:g}": summary(chosen)
            for lo, hi in bins
            if (chosen := [i for _, snr, i in rows if lo <= snr < hi])
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--mode", choices=["roi", "full"])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--videos", type=int, default=3, help="held-out videos per preset")
    ap.add_argument("--skip", type=int, default=0, help="leave out the first videos of each preset")
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--threads", type=int, default=2, help="torch threads in all (split between jobs)")
    ap.add_argument("--jobs", type=int, default=1, help="videos evaluated in parallel processes")
    ap.add_argument("--seeds", choices=["held-out", "tuning"], default="held-out", help="which videos")
    ap.add_argument("--baseline", choices=["classical", "none"], default="classical")
    ap.add_argument("--tracker", action="append", metavar="NAME=VALUE", help="tracker option; repeatable")
    ap.add_argument("--out", default="bench/results/accuracy")
    ap.add_argument(
        "--rescore",
        action="store_true",
        help="score the results.h5 an earlier run left in --out instead of tracking again (no frames/s)",
    )
    ap.add_argument(
        "--pool",
        nargs="+",
        type=Path,
        metavar="JSON",
        help="pool the per-video metrics of these accuracy.json records (same model, tracker options, "
        "frames and size; disjoint seeds) instead of tracking",
    )
    ap.add_argument(
        "--videos-dir",
        default=VIDEOS,
        help="where the generated videos are kept (shared by runs, so sweeps generate each video once)",
    )
    args = ap.parse_args()
    args.tracker_options = parse_options(args.tracker)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.pool:
        payload = pool_records(args.pool)
        (out / "accuracy.json").write_text(json.dumps(payload, indent=1, default=float))
        print_table(payload, args.particles)
        return
    seeds = functools.partial(held_out_seeds, tuning=args.seeds == "tuning", skip=args.skip)
    jobs = [(p, s) for p in args.presets for s in seeds(p, args.videos)]
    for preset, seed in jobs:  # generate first, so parallel workers never write the same file
        held_out_video(Path(args.videos_dir), preset, seed, args.frames, args.size, args.particles)
    t0 = time.perf_counter()
    task = functools.partial(_evaluate_one, args=args, threads=max(1, args.threads // args.jobs))
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool_:
            done = list(pool_.map(task, jobs))
    else:
        done = [task(job) for job in jobs]
    results = {}
    for preset in args.presets:
        per_method: dict[str, list[dict]] = {}
        for (p, seed), metrics in zip(jobs, done):
            if p == preset:
                for name, m in metrics.items():
                    per_method.setdefault(name, []).append({"seed": seed, **m})
        results[preset] = {name: pool(rows) for name, rows in per_method.items()}
    print(f"{len(jobs)} videos evaluated in {time.perf_counter() - t0:.0f} s ({args.jobs} jobs)", flush=True)
    per_job = max(1, args.threads // args.jobs)
    machine = f"{platform.processor() or platform.machine()}, {args.jobs} job(s) x {per_job} torch thread(s)"
    payload = {
        "model": args.model,
        "frames": args.frames,
        "size": args.size,
        "videos_per_preset": args.videos,
        "skip": args.skip,
        "seeds": args.seeds,
        "tracker_options": args.tracker_options,
        "machine": machine,
        "results": results,
    }
    (out / "accuracy.json").write_text(json.dumps(payload, indent=1, default=float))
    print_table(payload, args.particles)


def pool_records(paths: list[Path]) -> dict:
    """One record pooling the per-video metrics of several ``accuracy.json`` records.

    The records must share model, tracker options, frames and size, and no video (preset,
    seed) may appear twice: pooling is for disjoint seed sets, never for repeats.
    """
    records = [json.loads(Path(p).read_text()) for p in paths]
    same = ("model", "tracker_options", "frames", "size", "seeds")
    for p, r in zip(paths[1:], records[1:]):
        for key in same:
            if r.get(key) != records[0].get(key):
                theirs, ours = r.get(key), records[0].get(key)
                raise SystemExit(f"{p}: {key} {theirs!r} differs from {paths[0]}'s {ours!r}")
    rows: dict[str, dict[str, list[dict]]] = {}
    for r in records:
        for preset, methods in r["results"].items():
            for name, m in methods.items():
                rows.setdefault(preset, {}).setdefault(name, []).extend(m["videos"])
    for preset, methods in rows.items():
        for name, videos in methods.items():
            seeds = [v["seed"] for v in videos]
            if len(set(seeds)) != len(seeds):
                raise SystemExit(f"{preset} / {name}: a video appears in two records (seeds {sorted(seeds)})")
    counts = {len(v) for methods in rows.values() for v in methods.values()}
    return {
        **{key: records[0].get(key) for key in same},
        "videos_per_preset": max(counts),
        "skip": sorted({r.get("skip", 0) for r in records}),
        "machine": records[0].get("machine"),
        "pooled_from": [str(p) for p in paths],
        "results": {p: {name: pool(v) for name, v in methods.items()} for p, methods in rows.items()},
    }


def print_table(payload: dict, particles: int) -> None:
    """The Markdown table of a record (:func:`main`'s or :func:`pool_records`'s)."""
    results = payload["results"]
    print(
        f"\nmodel {payload['model']} {payload['tracker_options'] or ''}; {payload['seeds']} seeds;"
        f" {payload['size']} px, {particles} particles, {payload['frames']} frames, "
        f"{payload['videos_per_preset']} videos per preset; {payload['machine']}\n"
    )
    print(
        "| preset | method | mean IoU | J&F | centroid err (px) | ID switches | D tracked vs true "
        "| coverage | wrong while present | worst video: centroid / D / wrong | worst particle | fps |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for preset, methods in results.items():
        for name, m in methods.items():
            ious = ", ".join(f"{v['iou_mean']:.2f}" for v in m["videos"])
            missing = f" ({m['d_missing']} particles n/a)" if m.get("d_missing") else ""
            count = len(m["videos"])
            if count != payload["videos_per_preset"]:  # pooled records where a method ran on fewer
                name = f"{name} ({count} videos)"
            print(
                f"| {preset} | {name} | {m['iou_mean']:.3f} ({ious}) | {m['jf_mean']:.1f} | "
                f"{m['centroid_err_px']:.2f} | {m['id_switches']} | {m['d_rel_err']:.1%}{missing}"
                f" (same frames {m.get('d_rel_err_same_frames', np.nan):.1%}) | "
                f"{m['coverage']:.3f} | {m.get('wrong_while_present', np.nan):.2%} | "
                f"{_worst_cell(m['worst'])} | "
                f"{_particle_cell(m['worst'])} | {m['fps']:.1f} |"
            )
        iou, cen, ids, d, cov = TARGETS[preset]
        print(
            f"| {preset} | *target* | ≥ {iou:.2f} | | ≤ {cen} | {ids} | ≤ {d:.0%} | ≥ {cov:.2f} "
            f"| ≤ {WRONG_TARGET:.0%} "
            f"| centroid ≤ 2 x mean | | |"
        )
    print_kinds(results)


def print_kinds(results: dict) -> None:
    """The per-particle IoU by particle shape and by per-pixel SNR (records that hold it)."""
    rows = [
        (preset, name, group, key, v)
        for preset, methods in results.items()
        for name, m in methods.items()
        for group in ("shape", "snr")
        for key, v in m.get("iou_by_kind", {}).get(group, {}).items()
    ]
    if not rows:
        return
    print("\nPer-particle IoU (mean over its frames) by shape and by median per-pixel SNR:\n")
    print("| preset | method | particles by | group | particles | mean IoU | worst particle |")
    print("|---|---|---|---|---|---|---|")
    for preset, name, group, key, v in rows:
        cells = f"{v['particles']} | {v['iou']:.3f} | {v['worst']:.3f}"
        print(f"| {preset} | {name} | {group} | {key} | {cells} |")


def _worst_cell(w: dict) -> str:
    get = lambda k: w.get(k, {"value": np.nan, "seed": 0})  # noqa: E731
    c, d, x = get("centroid_err_px"), get("d_rel_err"), get("wrong_while_present")
    return (
        f"{c['value']:.2f} px ({c['seed']}) / {d['value']:.1%} ({d['seed']}) / {x['value']:.1%} ({x['seed']})"
    )


def _particle_cell(w: dict) -> str:
    p = w.get("particle_centroid_err_px")
    return "n/a" if p is None else f"{p['value']:.1f} px ({p['seed']} #{p['particle']})"


if __name__ == "__main__":
    main()
