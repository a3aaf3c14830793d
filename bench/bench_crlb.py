"""How precisely can a particle be located at all? Cramér–Rao bounds on the synthetic videos.

The generator knows everything about a frame: the expected image of every particle at any
position, and its noise (shot noise through the detector MTF, read noise, correlated noise,
8-bit digitisation). From these this script computes, for every particle fully inside the
field on every frame, the Fisher information of its position ``(x, y)`` and so the smallest
error any estimator can have:

* **single frame**: the Cramér–Rao bound of an unbiased estimator that sees only this frame
  and knows the particle's shape, contrast, orientation and the background exactly (knowing
  less can only raise the bound, so it is a true lower bound for a tracker, which knows none
  of these);
* **live** (causal): a Kalman filter that also knows the particle moves as a random walk
  with the true mean squared step of its path and uses all earlier frames;
* **offline**: the Rauch–Tung–Striebel smoother of the same model, using all 300 frames
  (the Bayesian bound for that motion model).

Reported as the mean Euclidean error (px) those covariances imply, averaged like
``samem eval``'s centroid error (frames where the particle is fully inside the field), per
video and pooled per preset, beside the targets of issue 6 and, with ``--measured``, the
centroid errors a ``bench_accuracy.py`` run measured on the same videos.

Noise: the detector's output for a flat exposure is simulated at two electron levels with the
video's own imaging model and cut into ``--patch``-px squares; the averaged periodograms give
the noise power spectrum ``S(k; lam) = A(k) + lam B(k)`` (shot noise is linear in the
expected electrons ``lam``). Each particle's bound uses ``lam`` at its darkest expected pixel
(less shot noise than anywhere around it, so the bound stays a lower bound) and the Whittle
form of the Fisher information for stationary Gaussian noise,
``I_ij = sum_k Re(conj(F d_i) F d_j) / (n^2 S(k))``, ``d_i`` the derivative of the expected
digitised patch with respect to the position (central differences of the renderer's own
shapes). JPEG (not in the three presets) would not be modelled.

    python bench/bench_crlb.py --videos 3 --json bench/records/crlb/crlb.json \
        --measured bench/records/accuracy/accuracy_default.json
    python bench/bench_crlb.py --seeds tuning --videos 12 --presets medium thick
    python bench/bench_crlb.py --from bench/records/crlb/crlb.json bench/records/crlb/crlb_tuning.json \
        --plot docs/img/crlb.png

Needs no video files: the scenes are rebuilt from the seeds (the same scenes
``bench_accuracy.py`` writes).
"""

from __future__ import annotations

import argparse
import json
import sys
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_accuracy import PRESETS, TARGETS, held_out_seeds  # noqa: E402

from samem.eval.evaluate import _d_rel_err as d_rel_err  # noqa: E402  (samem eval's own D comparison)
from samem.synthetic import SynthParams  # noqa: E402
from samem.synthetic.imaging import gaussian_blur  # noqa: E402
from samem.synthetic.render import Renderer  # noqa: E402

STEP_PX = 0.05  # central-difference step of the position derivative (px)
DRAWS = 8  # noise draws for the D error floor
SAMPLES = 4096  # normal draws for the mean Euclidean error of a 2 x 2 covariance
_Z = np.random.default_rng(0).standard_normal((SAMPLES, 2))


def noise_spectrum(renderer: Renderer, n: int, frames: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)``: the detector noise power spectrum ``A + lam B`` (ADU², per ``n x n`` bin)."""
    img = renderer.imaging
    size = renderer.params.size
    levels = (img.background_mean, 0.5 * img.background_mean)
    spectra = []
    rng = np.random.default_rng(renderer.params.seed + 7)
    for lam0 in levels:
        acc, count = np.zeros((n, n)), 0
        for _ in range(frames):
            out = img.detect(np.full((size, size), lam0, np.float32), rng).astype(np.float64)
            for r in range(0, size - n + 1, n):
                for c in range(0, size - n + 1, n):
                    p = out[r : r + n, c : c + n]
                    acc += np.abs(np.fft.fft2(p - p.mean())) ** 2 / n**2
                    count += 1
        spectra.append(acc / count)
    b = (spectra[0] - spectra[1]) / (levels[0] - levels[1])
    a = spectra[0] - levels[0] * b
    a[0, 0] = np.inf  # patch means were removed (a position derivative has no mean anyway)
    return a, np.maximum(b, 0.0)


class Expected:
    """Expected (noise-free) digitised patches of one frame, with one particle moved."""

    def __init__(self, renderer: Renderer, t: int, n: int):
        self.r, self.t, self.n = renderer, t, n
        self.bg, _ = renderer.imaging.background(t, float(renderer.flicker[t]))
        self.gain = renderer.imaging.adu_per_electron

    def patch(
        self, k: int, r0: int, c0: int, dx: float = 0.0, dy: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected ADU on ``[r0:r0+n, c0:c0+n]`` with particle ``k`` moved by ``(dx, dy)``,
        and the expected electrons there (the renderer's own particle contrast and blur)."""
        r, n, t = self.r, self.n, self.t
        sc, img = r.scene, r.imaging
        mods = []
        for j, shape in enumerate(sc.shapes):
            x, y = sc.xy_px[t, j] + ((dx, dy) if j == k else (0.0, 0.0))
            p = shape.render(x - c0, y - r0, sc.angle_rad[t, j], n, n, pad=r.pads[j])
            if p is not None:
                mods.append((p, img.modulation(p.thickness * r.params.pixel_size_nm, bool(sc.dark[j]))))
        lam = self.bg[r0 : r0 + n, c0 : c0 + n].copy()
        r._apply_particles(lam, mods)
        mtf = img.params.imaging.mtf_sigma_px
        out = gaussian_blur(lam, mtf, cv2.BORDER_REFLECT) if mtf > 0 else lam
        return self.gain * out.astype(np.float64), lam


def window(shape, x: float, y: float, size: int, n: int) -> tuple[int, int] | None:
    """Top-left ``(r0, c0)`` of the ``n`` px square around a particle at ``(x, y)``, or None when
    the particle is not fully inside the ``size`` px field (``samem eval`` scores only those)."""
    rad = shape.radius_px
    if not (rad <= x <= size - 1 - rad and rad <= y <= size - 1 - rad):
        return None
    return int(np.clip(round(y) - n // 2, 0, size - n)), int(np.clip(round(x) - n // 2, 0, size - n))


def _weighted(fa: np.ndarray, fb: np.ndarray, spectrum: np.ndarray) -> float:
    """Noise-weighted inner product of two patches given by their Fourier transforms."""
    return float(np.sum((np.conj(fa) * fb).real / spectrum)) / fa.size


def fisher(d: list[np.ndarray], spectrum: np.ndarray) -> np.ndarray:
    """2 x 2 Fisher information from position derivatives ``d`` and the noise spectrum."""
    f = [np.fft.fft2(x) for x in d]
    return np.array([[_weighted(fi, fj, spectrum) for fj in f] for fi in f])


def mean_error(cov: np.ndarray) -> float:
    """Mean Euclidean length of a zero-mean normal vector with covariance ``cov`` (px)."""
    w, v = np.linalg.eigh(0.5 * (cov + cov.T))
    e = _Z * np.sqrt(np.maximum(w, 0.0))
    return float(np.mean(np.hypot(e[:, 0], e[:, 1])))


def kalman(infos: list[np.ndarray | None], q: float) -> tuple[list, list]:
    """Filtered and smoothed position covariances of a 2D random walk (step variance ``q``
    px² per axis) observed with Fisher information ``infos`` (None: not observed)."""
    big = 1e8
    prior_p = np.eye(2) * big
    priors, posts = [], []
    for info in infos:
        post_p = np.linalg.inv(np.linalg.inv(prior_p) + (info if info is not None else 0.0))
        priors.append(prior_p)
        posts.append(post_p)
        prior_p = post_p + q * np.eye(2)
    smooth = list(posts)
    for t in range(len(infos) - 2, -1, -1):
        gain = posts[t] @ np.linalg.inv(priors[t + 1])
        smooth[t] = posts[t] + gain @ (smooth[t + 1] - priors[t + 1]) @ gain.T
    return posts, smooth


def bound_video(job: tuple[str, int, int, int, int, int, list[Path]]) -> dict:
    """Bounds of one video: per particle, the three mean errors over its inside frames; with a
    tracked run of the video in ``runs``, its centroid error and the bound on the same frames."""
    preset, seed, frames, size, particles, n, runs = job
    params = SynthParams.from_preset(preset, frames=frames, size=size, n_particles=particles, seed=seed)
    r = Renderer(params)
    a, b = noise_spectrum(r, n)
    sc = r.scene
    k_count = len(sc.shapes)
    infos = [[None] * frames for _ in range(k_count)]
    for t in range(frames):
        exp = Expected(r, t, n)
        for k, shape in enumerate(sc.shapes):
            origin = window(shape, *sc.xy_px[t, k], size, n)
            if origin is None:
                continue
            _, d, lam_edge = derivatives(exp, k, *origin)
            infos[k][t] = fisher(d, a + lam_edge * b)
    d_floor = d_error_floor(r, infos)
    rows = {}
    for k in range(k_count):
        inside = [t for t in range(frames) if infos[k][t] is not None]
        if not inside:
            continue
        steps = np.diff(sc.xy_px[:, k], axis=0)
        q = float(np.mean(steps**2))  # mean squared step per axis (px²), the walk's variance
        posts, smooth = kalman(infos[k], q)
        single = [mean_error(np.linalg.inv(infos[k][t])) for t in inside]
        rows[str(k + 1)] = {
            "frames": len(inside),
            "step_rms_px": float(np.sqrt(2 * q)),
            "single_px": float(np.mean(single)),
            "live_px": float(np.mean([mean_error(posts[t]) for t in inside])),
            "offline_px": float(np.mean([mean_error(smooth[t]) for t in inside])),
            "d_rel_err_floor": d_floor.get(k + 1, float("nan")),
            "inside_frames": inside,
            "single_per_frame_px": [round(s, 3) for s in single],
        }
    pooled = {
        key: float(
            np.sum([v[key] * v["frames"] for v in rows.values()])
            / max(sum(v["frames"] for v in rows.values()), 1)
        )
        for key in ("single_px", "live_px", "offline_px")
    }
    pooled["d_rel_err_floor"] = float(np.nanmean([v["d_rel_err_floor"] for v in rows.values()]))
    out = {"preset": preset, "seed": seed, **pooled, "particles": rows}
    tracks = next(
        (
            d / f"{preset}_{seed}_samem" / "tracks.csv"
            for d in runs
            if (d / f"{preset}_{seed}_samem" / "tracks.csv").exists()
        ),
        None,
    )
    if tracks is not None:
        out.update(compare_tracked(pd.read_csv(tracks), sc.xy_px, rows))
        out["run"] = str(tracks.parent)
    return out


def compare_tracked(tracked: pd.DataFrame, xy: np.ndarray, rows: dict) -> dict:
    """Centroid error of a tracked run (``samem eval``'s: frames the particle is reported present
    and lies fully inside the field) and the single-frame bound on those same frames."""
    tracked = tracked[tracked["present"].astype(bool)].dropna(subset=["x", "y"])
    errs, bounds = [], []
    for pid, row in rows.items():
        bound = dict(zip(row["inside_frames"], row["single_per_frame_px"]))
        mine = tracked[tracked["particle"] == int(pid)]
        e_p, b_p = [], []
        for t, x, y in mine[["frame", "x", "y"]].itertuples(index=False):
            if int(t) in bound:
                tx, ty = xy[int(t), int(pid) - 1]
                e_p.append(float(np.hypot(x - tx, y - ty)))
                b_p.append(bound[int(t)])
        row["tracked_px"] = float(np.mean(e_p)) if e_p else float("nan")
        row["bound_tracked_frames_px"] = float(np.mean(b_p)) if b_p else float("nan")
        errs += e_p
        bounds += b_p
    return {
        "tracked_px": float(np.mean(errs)) if errs else float("nan"),
        "bound_tracked_frames_px": float(np.mean(bounds)) if bounds else float("nan"),
    }


def d_error_floor(r: Renderer, infos: list[list], draws: int = DRAWS) -> dict[int, float]:
    """Relative D error (``samem eval``'s, per particle, mean over ``draws``) of tracks that are
    the true positions plus errors drawn from the single-frame bounds: what a tracker that
    locates every particle on every inside frame as well as possible would score."""
    sc, p = r.scene, r.params
    rows = [
        (t, k + 1, *sc.xy_px[t, k], np.linalg.inv(info))
        for k, per in enumerate(infos)
        for t, info in enumerate(per)
        if info is not None
    ]
    if not rows:
        return {}
    truth = pd.DataFrame([row[:4] for row in rows], columns=["frame", "particle", "x", "y"])
    chol = np.stack([np.linalg.cholesky(0.5 * (c + c.T)) for *_, c in rows])
    rng = np.random.default_rng(p.seed)
    per: dict[int, list[float]] = {}
    for _ in range(draws):
        noisy = truth.copy()
        e = np.einsum("nij,nj->ni", chol, rng.standard_normal((len(rows), 2)))
        noisy["x"] += e[:, 0]
        noisy["y"] += e[:, 1]
        _, errs = d_rel_err(truth, noisy, p.pixel_size_nm, p.frame_interval_s)
        for pid, v in errs.items():
            per.setdefault(int(pid), []).append(v)
    return {pid: float(np.nanmean(v)) for pid, v in per.items()}


def derivatives(exp: Expected, k: int, r0: int, c0: int, x: float = 0.0, y: float = 0.0):
    """Expected patch (ADU) with particle ``k`` moved by ``(x, y)``, its x and y derivatives, and
    the expected electrons where the derivatives are (their squared-gradient-weighted mean)."""
    mu, lam = exp.patch(k, r0, c0, x, y)
    d = []
    for dx, dy in ((STEP_PX, 0.0), (0.0, STEP_PX)):
        d.append(
            (exp.patch(k, r0, c0, x + dx, y + dy)[0] - exp.patch(k, r0, c0, x - dx, y - dy)[0])
            / (2 * STEP_PX)
        )
    weight = d[0] ** 2 + d[1] ** 2  # where the position information is: the particle's edge
    return mu, d, float(np.sum(weight * lam) / np.sum(weight))


def ml_fit(exp: Expected, k: int, r0: int, c0: int, obs: np.ndarray, spectrum: np.ndarray, iters: int = 6):
    """Position offset (px) of particle ``k`` that best explains ``obs``: the maximum-likelihood
    estimate for stationary Gaussian noise with ``spectrum``, knowing everything but the
    position (Gauss-Newton from the truth; the offset between the digitised and expected
    means is removed first)."""
    theta = np.zeros(2)
    level = obs.mean() - exp.patch(k, r0, c0)[0].mean()
    for _ in range(iters):
        mu, d, _ = derivatives(exp, k, r0, c0, *theta)
        res = np.fft.fft2(obs - mu - level)
        g = np.array([_weighted(np.fft.fft2(x), res, spectrum) for x in d])
        theta = np.clip(theta + np.linalg.solve(fisher(d, spectrum), g), -15.0, 15.0)
    return theta


def check_efficiency(
    preset: str, seed: int, reps: int, frames: int, size: int, particles: int, n: int, times=(0, 150)
) -> list[dict]:
    """Bound against the known-shape maximum-likelihood fit on ``reps`` fresh noise draws of the
    same frames: the fit's mean error should sit at or a little above the bound."""
    params = SynthParams.from_preset(preset, frames=frames, size=size, n_particles=particles, seed=seed)
    r = Renderer(params)
    a, b = noise_spectrum(r, n)
    rng = np.random.default_rng(seed + 11)
    out = []
    for t in times:
        exp, lam = Expected(r, t, n), r.expected(t)[0]
        for k, shape in enumerate(r.scene.shapes):
            origin = window(shape, *r.scene.xy_px[t, k], size, n)
            if origin is None:
                continue
            r0, c0 = origin
            _, d, lam_edge = derivatives(exp, k, r0, c0)
            spectrum = a + lam_edge * b
            bound = mean_error(np.linalg.inv(fisher(d, spectrum)))
            errs = [
                np.hypot(
                    *ml_fit(
                        exp,
                        k,
                        r0,
                        c0,
                        r.imaging.detect(lam.copy(), rng)[r0 : r0 + n, c0 : c0 + n].astype(np.float64),
                        spectrum,
                    )
                )
                for _ in range(reps)
            ]
            out.append(
                {
                    "preset": preset,
                    "seed": seed,
                    "frame": t,
                    "particle": k + 1,
                    "shape": shape.kind,
                    "bound_px": bound,
                    "ml_px": float(np.mean(errs)),
                }
            )
    return out


COLOURS = {"thin": "tab:blue", "medium": "tab:orange", "thick": "tab:red"}


def plot_bounds(videos: list[dict], path: Path) -> None:
    """Per particle: samem's centroid error against the bound on the same frames (log-log),
    with the bound itself, twice the bound and each preset's target marked; held-out videos
    (seeds below 2000) as dots, tuning videos as open circles."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

    fig = Figure(figsize=(5.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for p, colour in COLOURS.items():
        for held_out in (True, False):
            pts = [
                (q["bound_tracked_frames_px"], q["tracked_px"])
                for v in videos
                if v["preset"] == p and (v["seed"] < 2000) == held_out
                for q in v["particles"].values()
                if np.isfinite(q.get("tracked_px", np.nan))
                and np.isfinite(q.get("bound_tracked_frames_px", np.nan))
            ]
            if not pts:
                continue
            x, y = np.array(pts).T
            label = f"{p}, {'held-out' if held_out else 'tuning'} ({len(pts)} particles)"
            style = {"color": colour} if held_out else {"facecolors": "none", "edgecolors": colour}
            ax.scatter(x, y, s=16, alpha=0.8, label=label, **style)
        ax.axhline(TARGETS[p][1], color=colour, lw=0.8, ls=":")
    line = np.array([0.1, 10.0])
    ax.plot(line, line, color="k", lw=1.0, label="bound (no estimator below)")
    ax.plot(line, 2 * line, color="0.5", lw=0.8, ls="--", label="2 x bound")
    ax.set(xscale="log", yscale="log", xlim=(0.25, 8), ylim=(0.25, 400))
    for axis, ticks in ((ax.xaxis, [0.3, 0.5, 1, 2, 3, 5]), (ax.yaxis, [0.3, 1, 3, 10, 30, 100, 300])):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FormatStrFormatter("%g"))
        axis.set_minor_locator(NullLocator())
    ax.set_xlabel("Cramér–Rao bound on samem's frames (px, mean per particle)")
    ax.set_ylabel("samem centroid error (px, mean per particle)")
    ax.set_title("Positions against the noise floor (dotted: the targets)", fontsize=10)
    ax.legend(fontsize=6.5, loc="upper left")
    fig.savefig(path, dpi=150)


def _px(v: float) -> str:
    return f"{v:.2f} px" if np.isfinite(v) else ""


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %" if np.isfinite(v) else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    ap.add_argument("--videos", type=int, default=3)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--seeds", choices=["held-out", "tuning"], default="held-out")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--particles", type=int, default=4)
    ap.add_argument("--patch", type=int, default=128, help="square (px) each particle's bound is computed on")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument(
        "--runs",
        type=Path,
        nargs="+",
        default=[],
        help="bench_accuracy.py output folders holding tracked runs of these videos (<preset>_<seed>_samem/)",
    )
    ap.add_argument("--json", type=Path, help="write all numbers here")
    ap.add_argument(
        "--plot", type=Path, help="figure of samem's errors against the bound (needs --runs or --from)"
    )
    ap.add_argument(
        "--from",
        dest="saved",
        type=Path,
        nargs="+",
        help="instead of computing: only plot the videos of these --json files",
    )
    ap.add_argument(
        "--check",
        type=int,
        metavar="REPS",
        help="instead: the bound against a known-shape maximum-likelihood fit on REPS noise draws"
        " (first video of each preset, frames 0 and 150)",
    )
    args = ap.parse_args()
    if args.saved:
        if not args.plot:
            ap.error("--from only plots: give --plot")
        plot_bounds([v for f in args.saved for v in json.loads(f.read_text())["videos"]], args.plot)
        return
    if args.check:
        rows = []
        for p in args.presets:
            seed = held_out_seeds(p, 1, tuning=args.seeds == "tuning", skip=args.skip)[0]
            rows += check_efficiency(p, seed, args.check, args.frames, args.size, args.particles, args.patch)
        print("| preset | video | frame | particle | shape | bound | maximum-likelihood fit | fit / bound |")
        print("|---|---|---|---|---|---|---|---|")
        for q in rows:
            print(
                f"| {q['preset']} | {q['seed']} | {q['frame']} | {q['particle']} | {q['shape']}"
                f" | {_px(q['bound_px'])}"
                f" | {_px(q['ml_px'])} | {q['ml_px'] / q['bound_px']:.2f} |"
            )
        if args.json:
            args.json.write_text(json.dumps({"reps": args.check, "rows": rows}, indent=1))
        return
    jobs = [
        (p, s, args.frames, args.size, args.particles, args.patch, args.runs)
        for p in args.presets
        for s in held_out_seeds(p, args.videos, tuning=args.seeds == "tuning", skip=args.skip)
    ]
    with Pool(args.jobs) as pool:
        videos = pool.map(bound_video, jobs)
    print(
        "| preset | video | single frame | live (Kalman) | offline (smoother) | samem"
        " | bound on samem's frames | samem / bound | target | D error floor | D target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for p in args.presets:
        vs = [v for v in videos if v["preset"] == p]
        target = f"≤ {TARGETS[p][1]} px"
        d_target = f"≤ {100 * TARGETS[p][3]:.0f} %"
        keys = ["single_px", "live_px", "offline_px"]
        if all("tracked_px" in v for v in vs):
            keys += ["tracked_px", "bound_tracked_frames_px"]
        s = {key: float(np.mean([v[key] for v in vs])) for key in keys}
        # D errors pooled over particles, as bench_accuracy.py pools them
        s["d_rel_err_floor"] = float(
            np.nanmean([q["d_rel_err_floor"] for v in vs for q in v["particles"].values()])
        )
        summary[p] = s
        for v, bold in [(v, "") for v in vs] + [({**s, "seed": "mean"}, "**")]:
            tracked, same = v.get("tracked_px", np.nan), v.get("bound_tracked_frames_px", np.nan)
            ratio = f"{tracked / same:.1f}" if np.isfinite(tracked / same) else ""
            print(
                f"| {bold}{p}{bold} | {v['seed']} | {bold}{_px(v['single_px'])}{bold} | {_px(v['live_px'])}"
                f" | {_px(v['offline_px'])} | {_px(tracked)} | {_px(same)} | {ratio} | {target}"
                f" | {bold}{_pct(v['d_rel_err_floor'])}{bold} | {d_target} |"
            )
    if args.plot:
        plot_bounds(videos, args.plot)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": args.seeds,
                    "frames": args.frames,
                    "size": args.size,
                    "patch": args.patch,
                    "summary": summary,
                    "videos": videos,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
