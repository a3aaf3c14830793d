"""Figures and the ``samem plot`` command on results and synthetic files."""

import h5py
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from samem.cli import main as cli
from samem.io.table import write_table
from samem.stats import compute_statistics
from samem.stats.plots import plot_all, plot_msd, plot_trajectories


def results_df(seed=0, P=5, T=80):
    rng = np.random.default_rng(seed)
    xy = np.cumsum(rng.normal(size=(T, P, 2)), axis=0) + rng.uniform(20, 100, (1, P, 2))
    df = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(T), P),
            "particle": np.tile(np.arange(P), T),
            "x": xy[..., 0].ravel(),
            "y": xy[..., 1].ravel(),
            "area": 40,
            "orientation": 0.0,
            "eccentricity": 0.2,
            "score": 0.9,
            "present": rng.random(T * P) > 0.1,
        }
    )
    df.attrs.update(pixel_size_nm=0.7, frame_interval_s=0.02)
    return df


@pytest.fixture
def only_plot(monkeypatch):
    """Run the CLI with just this command registered (other modules may be mid-development)."""
    monkeypatch.setattr(cli, "COMMANDS", ["plot"])


def test_plot_all_writes_png_and_svg(tmp_path):
    df = results_df()
    paths = plot_all(df, tmp_path / "figs", config={"vanhove": {"lags": [1, 5]}})
    names = sorted(p.name for p in paths)
    assert names == sorted(
        f"{n}.{e}" for n in ("trajectories", "msd", "vanhove", "vacf") for e in ("png", "svg")
    )
    for p in paths:
        assert p.stat().st_size > 5000
    img = imread(tmp_path / "figs" / "msd.png")
    assert img.shape[0] > 500 and img[..., :3].std() > 0.05  # a drawn figure, not blank
    assert "MSD (nm" in (tmp_path / "figs" / "msd.svg").read_text()  # text kept as text in SVG
    assert not list((tmp_path / "figs").glob(".*"))  # no temporary files left behind


def test_msd_legend_states_fits():
    st = compute_statistics(results_df(1))
    fig = plot_msd(st)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(lbl.startswith("α = 1: D = ") and "nm²/s" in lbl for lbl in labels)
    assert any(lbl.startswith("α = ") and "±" in lbl for lbl in labels)
    assert not any("localisation" in lbl for lbl in labels)  # no sigma column: no floor drawn
    df = results_df(1)
    df["sigma"] = 0.5  # px: 0.35 nm at 0.7 nm/px
    fig = plot_msd(compute_statistics(df))
    floor = [ln for ln in fig.axes[0].get_lines() if "localisation" in str(ln.get_label())]
    assert len(floor) == 1 and floor[0].get_label().startswith("4σ², localisation σ = 0.35 nm")
    assert floor[0].get_ydata()[0] == pytest.approx(4 * 0.35**2)
    fig = plot_trajectories(results_df(1), frame_shape=(128, 160))
    ax = fig.axes[0]
    assert ax.get_xlim() == (0, 160) and ax.get_ylim() == (128, 0)  # image orientation
    assert any("nm" in t.get_text() for t in ax.findobj(lambda a: hasattr(a, "get_text")))


def test_cli_plot_results_file(tmp_path, only_plot, capsys):
    df = results_df(2)
    path = tmp_path / "results.h5"
    with h5py.File(path, "w") as f:
        write_table(f, "tracks", df)
        f.attrs.update(pixel_size_nm=0.7, frame_interval_s=0.02)
    assert cli.main(["plot", str(path), "--out", str(tmp_path / "out"), "--format", "png"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "msd.png",
        "trajectories.png",
        "vacf.png",
        "vanhove.png",
    ]
    assert "msd.png" in capsys.readouterr().out


def test_cli_errors_exit_2_without_output(tmp_path, only_plot, capsys):
    out = tmp_path / "out"
    assert cli.main(["plot", str(tmp_path / "missing.h5"), "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert cli.main(["plot", str(bad), "--out", str(out)]) == 2
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.attrs["pixel_size_nm"] = 1.0
    assert cli.main(["plot", str(empty), "--out", str(out)]) == 2
    nounits = tmp_path / "nounits.h5"
    with h5py.File(nounits, "w") as f:
        write_table(f, "tracks", results_df())
    assert cli.main(["plot", str(nounits), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("samem: error:") == 3 and "pixel_size_nm" in err and "Traceback" not in err
    absent = tmp_path / "absent.h5"
    with h5py.File(absent, "w") as f:
        write_table(f, "tracks", results_df().assign(present=False))
        f.attrs.update(pixel_size_nm=1.0, frame_interval_s=0.1)
    assert cli.main(["plot", str(absent), "--out", str(out)]) == 2
    assert "nothing to plot" in capsys.readouterr().err
    assert not out.exists()
