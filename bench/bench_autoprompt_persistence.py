"""Would a second look confirm the faint particles auto-prompt misses? (detector alone)

Track-before-detect in its simplest form: a particle too faint for ``threshold_sigma`` on
the mean of frames 0-4 may still show on it *and* on the mean of frames 5-9, near the same
place, while noise peaks come and go. For each video the detector
(:func:`samem.stream.autoprompt.detect`, shipped settings but a low threshold) runs on both
5-frame means; a candidate of the first window below ``threshold_sigma`` is *confirmed*
when a candidate of the second lies within ``gate`` × the larger of their two band-pass
diameters, both reach ``floor`` sigma and their strengths sum to at least ``total``.

Scored against the truth of the same frames (``bench_autoprompt.visible_truth``): a
detection belongs to a particle when it lies within the particle's equivalent radius of its
centre on frame 2 or 4 (the window's middle and last frame). Per preset and rule: particles
found by the shipped rule (strength >= ``threshold_sigma`` on the first window), particles
only a confirmed candidate finds, and confirmed candidates on no particle (false).

Tuning seeds only (2001 + 10 k thin, 2002 + 10 k medium, 2003 + 10 k thick); about 4 s per
video on one core.

    python bench/bench_autoprompt_persistence.py --videos 24 --videos-dir /tmp/videos \\
        --json bench/records/autoprompt/persistence_tuning.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import held_out_seeds, held_out_video  # noqa: E402
from bench_autoprompt import PRESETS, visible_truth  # noqa: E402

FLOORS = (3.5, 4.0, 4.5)
GATES = (0.5, 1.0, 1.5)
TOTALS = (8.0, 8.5, 9.0)


def candidates(frames: np.ndarray, floor: float) -> list[tuple[float, float, float, float]]:
    """``(x, y, strength, diameter)`` of every detection down to ``floor`` sigma (px, sigma, px)."""
    from samem.stream.autoprompt import detect

    found = detect(frames, {"threshold_sigma": floor, "grow_sigma": min(2.0, floor), "max_objects": 100000})
    return [(d.centroid[0], d.centroid[1], d.strength, d.diameter_px) for d in found]


def owner(det, truth) -> int | None:
    """Truth particle whose equivalent radius holds the detection on one of ``truth``'s frames."""
    for t in truth.itertuples():
        if np.hypot(t.x - det[0], t.y - det[1]) <= np.sqrt(t.area_px / np.pi):
            return int(t.particle)
    return None


def video_record(video: Path, low: float) -> dict:
    """Candidates of both windows and the truth of frames 0-9 of one video."""
    with h5py.File(video, "r") as f:
        stack = f["frames"][:10].astype(np.float32)
    truth = visible_truth(video, 10)
    return {
        "first": candidates(stack[:5], low),
        "second": candidates(stack[5:], low),
        "truth_first": truth[truth["frame"].isin([2, 4])],
        "particles": sorted(set(truth["particle"].astype(int))),
    }


def score(records: list[dict], threshold: float, floor: float | None, gate: float, total: float) -> dict:
    """Particles found by the shipped rule, added by confirmation, and false confirmations."""
    n = base = added = false = 0
    for r in records:
        n += len(r["particles"])
        found = {owner(d, r["truth_first"]) for d in r["first"] if d[2] >= threshold} - {None}
        base += len(found)
        if floor is None:
            continue
        for d in r["first"]:
            if not floor <= d[2] < threshold:
                continue
            if not any(
                e[2] >= floor
                and d[2] + e[2] >= total
                and np.hypot(e[0] - d[0], e[1] - d[1]) <= gate * max(d[3], e[3])
                for e in r["second"]
            ):
                continue
            pid = owner(d, r["truth_first"])
            if pid is None:
                false += 1
            elif pid not in found:
                found.add(pid)
                added += 1
    return {"particles": n, "shipped": base, "added": added, "false": false}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--videos", type=int, default=24, help="tuning videos per preset")
    p.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    p.add_argument("--videos-dir", default="bench/results/videos")
    p.add_argument("--json", help="write the table to this JSON file")
    args = p.parse_args(argv)

    from samem.stream.autoprompt import settings

    threshold = float(settings(None).threshold_sigma)
    rules = [(None, 0.0, 0.0), *itertools.product(FLOORS, GATES, TOTALS)]
    table: dict[str, list[dict]] = {}
    for preset in args.presets:
        records = []
        for seed in held_out_seeds(preset, args.videos, tuning=True):
            video = held_out_video(Path(args.videos_dir), preset, seed, 150, 1024, 4)
            records.append(video_record(video, min(FLOORS)))
        table[preset] = [
            {"floor": f, "gate": g, "total": t, **score(records, threshold, f, g, t)} for f, g, t in rules
        ]
        print(f"{preset}: {len(records)} videos", flush=True)
    print(
        f"| floor | gate | total | {' | '.join(f'{q}: shipped + added / particles, false' for q in table)} |"
    )
    print("|---|---|---|" + "---|" * len(table))
    for i, (f, g, t) in enumerate(rules):
        cells = [
            f"{r[i]['shipped']} + {r[i]['added']} / {r[i]['particles']}, {r[i]['false']}"
            for r in table.values()
        ]
        print(f"| {f or '-'} | {g or '-'} | {t or '-'} | {' | '.join(cells)} |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"seeds": "tuning", "videos": args.videos, "threshold_sigma": threshold, "rules": table},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
