"""Statistics on ground truth from the synthetic generator (samem.synthetic)."""

import numpy as np
import pandas as pd
import pytest

from samem.cli import main as cli
from samem.stats import compute_statistics, vacf
from samem.synthetic import SynthParams, motion, read_truth, write_h5

DT = 0.05  # s
PX = 1.0  # nm/px: positions from the motion module are already in nm


def tracks(paths, sigma_nm=0.0, seed=0):
    """Trajectory table from a list of (n_frames, 2) paths in nm, plus static localisation noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for p, xy in enumerate(paths):
        xy = xy + rng.normal(size=xy.shape) * sigma_nm
        rows.append(pd.DataFrame({"frame": np.arange(len(xy)), "particle": p, "x": xy[:, 0], "y": xy[:, 1]}))
    df = pd.concat(rows, ignore_index=True)
    df.attrs.update(pixel_size_nm=PX, frame_interval_s=DT)
    return df


def test_brownian_D_recovered():
    rng = np.random.default_rng(41)
    D = 120.0
    df = tracks([motion.brownian(200, D, DT, rng) for _ in range(30)], sigma_nm=3.0)
    st = compute_statistics(df)
    ens = st.summary["ensemble"]
    assert abs(ens["D_nm2_s"] - D) < 4 * ens["D_err_nm2_s"]
    assert abs(ens["offset_nm2"] - 4 * 3.0**2) < 4 * ens["offset_err_nm2"]
    z = (st.particles["D_nm2_s"] - D) / st.particles["D_err_nm2_s"]
    # 30 per-particle z-scores: mean within 4/sqrt(30), spread near 1
    assert abs(z.mean()) < 4 / np.sqrt(30) and 0.6 < z.std() < 1.5
    assert abs(ens["alpha"] - 1) < 4 * ens["alpha_err"]


@pytest.mark.parametrize("alpha", [0.6, 1.4])
def test_alpha_recovered_for_fractional_brownian(alpha):
    rng = np.random.default_rng(42)
    df = tracks([motion.fractional_brownian(150, 60.0, alpha, DT, rng) for _ in range(30)], sigma_nm=1.0)
    st = compute_statistics(df)
    ens = st.summary["ensemble"]
    assert abs(ens["alpha"] - alpha) < 4 * ens["alpha_err"]
    assert abs(ens["alpha_mean"] - alpha) < 4 * ens["alpha_sem"]
    if alpha < 1:  # anti-persistent steps: negative velocity correlation 2^(α-1) - 1 at one frame
        v = vacf(df, max_lag=3)
        assert abs(v["vacf_norm"].iloc[1] - (2 ** (alpha - 1) - 1)) < 4 / np.sqrt(v["n_pairs"].iloc[1])


def test_confined_motion_plateau():
    rng = np.random.default_rng(43)
    k = 0.1  # pN/nm
    df = tracks([motion.confined(400, 100.0, DT, k, rng) for _ in range(20)])
    plateau = 2 * 2 * motion.trap_variance_nm2(k)  # 2 ndim kT/k
    st = compute_statistics(df, config={"max_lag": 100})
    e = st.emsd.set_index("lag").loc[50:100]
    assert np.all(np.abs(e["msd_nm2"] - plateau) < 4 * e["sem_nm2"] + 0.05 * plateau)
    # the trap relaxes in ~8 frames; free diffusion with the same D would reach 4 D t = 2000 nm² at lag 100
    assert e["msd_nm2"].iloc[-1] < 0.1 * 4 * 100.0 * e["lag_s"].iloc[-1]
    assert st.summary["ensemble"]["alpha"] < 1 - 4 * st.summary["ensemble"]["alpha_err"]


def test_directed_motion_follows_closed_form():
    rng = np.random.default_rng(44)
    D, v = 50.0, np.array([12.0, -5.0])
    df = tracks([motion.directed(300, D, DT, v, rng) for _ in range(20)])
    st = compute_statistics(df, config={"max_lag": 60})
    e = st.emsd.set_index("lag")
    t = e["lag_s"].to_numpy()
    theory = 4 * D * t + (v @ v) * t**2
    assert np.all(np.abs(e["msd_nm2"] - theory) < 4 * e["sem_nm2"])
    assert st.summary["ensemble"]["alpha"] > 1.1


@pytest.fixture(scope="module")
def brownian_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("syn") / "brownian.h5"
    params = SynthParams.from_preset(
        "thin", frames=60, size=256, seed=7, models={"brownian": 1.0}, stage_drift_nm_s=(0.0, 0.0)
    )
    return write_h5(params, path)


def test_D_of_each_particle_in_a_synthetic_video(brownian_video):
    truth = read_truth(brownian_video)
    df = truth.tracks
    df.attrs.update(pixel_size_nm=truth.pixel_size_nm, frame_interval_s=truth.frame_interval_s)
    st = compute_statistics(df)
    fits = st.particles.set_index("particle")
    assert len(fits) == len(truth.D_nm2_s) >= 2
    for pid, D in truth.D_nm2_s.items():
        f = fits.loc[pid]
        assert f["fit_ok"], f["message"]
        assert abs(f["D_nm2_s"] - D) < 4 * f["D_err_nm2_s"], (pid, f["D_nm2_s"], D, f["D_err_nm2_s"])


def test_cli_plot_synthetic_truth(brownian_video, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", ["plot"])
    assert cli.main(["plot", str(brownian_video), "--out", str(tmp_path / "figs"), "--format", "png"]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "msd.png",
        "trajectories.png",
        "vacf.png",
        "vanhove.png",
    ]
