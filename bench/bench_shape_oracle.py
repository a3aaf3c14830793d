"""How well could one frame locate each particle if everything but its position were known? (issue 21)

The Cramér–Rao bounds of ``bench_crlb.py`` are local: they hold once an estimate already
lies near the truth. At low SNR an estimator must first *find* the particle, and a noise
blob of the particle's size then wins now and then (the threshold effect), so the bound can
sit far below any achievable error. This script measures the achievable error directly with
an oracle far better informed than any tracker: on every frame, the maximum-likelihood
position for the generator's own noise model (stationary Gaussian with the noise power
spectrum ``A + lam B`` that ``bench_crlb.py`` measures) given the particle's **exact expected
image on that frame** (the renderer's shape, orientation, contrast and blur: the expected
patch minus the same patch without the particle) and the rest of the frame's expected
image: the noise-whitened cross-correlation of that signature with the observed frame
(the same uint8 frame the tracker saw), searched over whole-pixel shifts within **one
equivalent radius of the true centre** (a tracker must search at least a step, for the
fast particles more), the peak refined by a parabola per axis. Its error is the distance
to the true centre (px), over the frames where the particle lies wholly inside the field,
frame 0 excluded (as ``samem eval``).

With ``--measured`` (``bench_accuracy.py`` records, which keep each particle's centroid
error per video) each particle's tracked error is set beside the oracle's, grouped by the
particle's median per-pixel SNR (the generator's ``snr``): which part of a preset's mean
its faintest particles set, and how far a single frame could take them.

    python bench/bench_shape_oracle.py --presets thin medium thick --videos 24 \\
        --measured bench/records/accuracy/accuracy_issue21_final.json \\
        bench/records/accuracy/accuracy_k8_15.json bench/records/accuracy/accuracy_fresh.json \\
        --json bench/records/centroid/shape_oracle.json

The scenes are rebuilt from the seeds (those ``bench_accuracy.py`` writes; the videos are
read from ``--videos-dir`` and generated there when missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import PRESETS, VIDEOS, held_out_seeds, held_out_video  # noqa: E402
from bench_crlb import Expected, noise_spectrum  # noqa: E402

from samem.synthetic import SynthParams  # noqa: E402
from samem.synthetic.render import Renderer  # noqa: E402

#: SNR bins (per-pixel, the generator's ``snr``) of the summary
SNR_BINS = (0.0, 0.3, 0.4, 0.5, 0.7, 1.0, np.inf)
#: patch sides (px) tried, smallest first: the particle and its search must fit with a margin
PATCHES = (128, 192, 256)
AWAY = 1e5  # a shift (px) that takes the particle out of every patch


def _vertex(left: float, mid: float, right: float) -> float:
    curve = left - 2 * mid + right
    return 0.5 * (left - right) / curve if curve < 0 else 0.0


def locate(exp: Expected, k: int, r0: int, c0: int, obs: np.ndarray, spectrum: np.ndarray, reach: int):
    """Offset ``(dx, dy)`` (px) of particle ``k`` from its true position that maximises the
    likelihood of ``obs`` (module docstring), searched within ``reach`` px."""
    with_particle, _ = exp.patch(k, r0, c0)
    without, _ = exp.patch(k, r0, c0, AWAY, AWAY)
    signature = with_particle - without
    residual = obs - without
    residual = residual - residual.mean()
    signature = signature - signature.mean()
    # correlation at every circular shift: sum_k conj(F sig) F res / S, back to shifts
    score = np.fft.ifft2(np.conj(np.fft.fft2(signature)) * np.fft.fft2(residual) / spectrum).real
    score = np.fft.fftshift(score)
    n = score.shape[0]
    mid = n // 2
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    local = score[mid - reach : mid + reach + 1, mid - reach : mid + reach + 1]
    local = np.where(dx**2 + dy**2 <= reach**2, local, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(local)), local.shape)
    y, x = iy + mid - reach, ix + mid - reach  # in the full score map: neighbours always exist
    sx = _vertex(score[y, x - 1], score[y, x], score[y, x + 1])
    sy = _vertex(score[y - 1, x], score[y, x], score[y + 1, x])
    return ix - reach + sx, iy - reach + sy


def oracle_video(job: tuple[str, int, Path, int, int, int]) -> list[dict]:
    """Per particle of one video: median SNR, equivalent radius, median step and oracle error."""
    preset, seed, video, frames, size, particles = job
    params = SynthParams.from_preset(preset, frames=frames, size=size, n_particles=particles, seed=seed)
    r = Renderer(params)
    sc = r.scene
    spectra = {}
    errors: dict[int, list[float]] = {}
    with h5py.File(video, "r") as f:
        observed = f["frames"]
        for t in range(1, frames):
            exp, frame = None, None
            for k, shape in enumerate(sc.shapes):
                rad = shape.radius_px
                x, y = sc.xy_px[t, k]
                if not (rad <= x <= size - 1 - rad and rad <= y <= size - 1 - rad):
                    continue
                equivalent = float(np.sqrt(shape.area_px / np.pi))
                reach = max(2, int(np.ceil(equivalent)))
                n = next((p for p in PATCHES if p >= 2 * (rad + reach) + 16), PATCHES[-1])
                if n > size:
                    continue
                if n not in spectra:
                    spectra[n] = noise_spectrum(r, n)
                r0 = int(np.clip(round(y) - n // 2, 0, size - n))
                c0 = int(np.clip(round(x) - n // 2, 0, size - n))
                if exp is None or exp.n != n:
                    exp = Expected(r, t, n)
                if frame is None:
                    frame = observed[t].astype(np.float64)
                _, lam = exp.patch(k, r0, c0)
                a, b = spectra[n]
                spectrum = a + float(np.median(lam)) * b
                dx, dy = locate(exp, k, r0, c0, frame[r0 : r0 + n, c0 : c0 + n], spectrum, reach)
                errors.setdefault(k + 1, []).append(float(np.hypot(dx, dy)))
    snr = np.asarray(params_snr(video), float)
    rows = []
    for pid, errs in errors.items():
        xy = sc.xy_px[:, pid - 1]
        rows.append(
            {
                "preset": preset,
                "seed": seed,
                "particle": str(pid),
                "snr": float(np.nanmedian(snr[:, pid - 1])) if snr.size else float("nan"),
                "radius_px": float(sc.shapes[pid - 1].radius_px),
                "step_px": float(np.median(np.hypot(*np.diff(xy, axis=0).T))),
                "frames": len(errs),
                "oracle_px": float(np.mean(errs)),
            }
        )
    return rows


def params_snr(video: Path) -> np.ndarray:
    """The generator's per-pixel SNR, ``(frames, particles)``, from the video's truth."""
    from samem.synthetic import read_truth

    tracks = read_truth(video).tracks
    return tracks.pivot(index="frame", columns="particle", values="snr").to_numpy()


def measured(paths: list[Path]) -> dict[tuple[str, int, str], float]:
    """Per-particle tracked centroid errors (px) of ``bench_accuracy.py`` records."""
    out = {}
    for path in paths:
        rec = json.loads(Path(path).read_text())
        for preset, methods in rec["results"].items():
            for video in methods.get("samem", {}).get("videos", []):
                for pid, err in video.get("centroid_err_per_particle", {}).items():
                    out[(preset, int(video["seed"]), str(pid))] = float(err)
    return out


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per preset and SNR bin: particles, mean oracle and tracked error, the bin's share of the
    preset's summed tracked error."""
    table = table.assign(snr_bin=pd.cut(table["snr"], SNR_BINS, right=False))
    total = table.groupby("preset")["tracked_px"].transform("sum")
    table = table.assign(share=table["tracked_px"] / total)
    return (
        table.groupby(["preset", "snr_bin"], observed=True)
        .agg(
            particles=("oracle_px", "size"),
            oracle_px=("oracle_px", "mean"),
            tracked_px=("tracked_px", "mean"),
            tracked_worse=("worse", "sum"),
            share_of_tracked_error=("share", "sum"),
        )
        .reset_index()
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--seeds", choices=["held-out", "tuning"], default="held-out")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--videos-dir", default=VIDEOS)
    ap.add_argument("--measured", nargs="+", type=Path, default=[], help="bench_accuracy.py records")
    ap.add_argument("--json", type=Path, help="write all numbers here")
    args = ap.parse_args()
    jobs = []
    for preset in args.presets:
        for seed in held_out_seeds(preset, args.videos, args.seeds == "tuning", args.skip):
            shape = (args.frames, args.size, args.particles)
            video = held_out_video(Path(args.videos_dir), preset, seed, *shape)
            jobs.append((preset, seed, video, *shape))
    with Pool(args.jobs) as pool:
        rows = [r for video_rows in pool.map(oracle_video, jobs) for r in video_rows]
    table = pd.DataFrame(rows)
    known = measured(args.measured)
    table["tracked_px"] = [known.get((r.preset, r.seed, r.particle), np.nan) for r in table.itertuples()]
    table["worse"] = table["tracked_px"] > table["oracle_px"]
    pd.set_option("display.width", 200)
    print(f"{len(jobs)} videos ({args.seeds} seeds), {len(table)} particles; errors in px\n")
    for preset, t in table.groupby("preset", sort=False):
        both = t.dropna(subset=["tracked_px"])
        print(
            f"{preset}: oracle {t['oracle_px'].mean():.2f} px mean over particles"
            + (
                f"; tracked {both['tracked_px'].mean():.2f} (oracle on the same particles "
                f"{both['oracle_px'].mean():.2f}); tracked worse than the oracle on "
                f"{int(both['worse'].sum())} of {len(both)} particles"
                if len(both)
                else ""
            )
        )
    groups = summary(table.dropna(subset=["tracked_px"])) if table["tracked_px"].notna().any() else None
    if groups is not None:
        print("\n" + groups.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "seeds": args.seeds,
            "videos_per_preset": args.videos,
            "skip": args.skip,
            "frames": args.frames,
            "measured": [str(p) for p in args.measured],
            "particles": table.to_dict(orient="records"),
            "by_snr": [] if groups is None else groups.astype({"snr_bin": str}).to_dict(orient="records"),
        }
        args.json.write_text(json.dumps(payload, indent=1, default=float))


if __name__ == "__main__":
    main()
