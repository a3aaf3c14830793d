"""samem's one configuration mechanism: samem.config.load / parse_overrides and the settings dataclasses."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from samem.config import Settings, load, load_yaml, parse_overrides, shipped_names
from samem.errors import SamemError
from samem.stats.summary import StatsConfig, load_config
from samem.train.config import TrainConfig, load_train_config


def test_parse_overrides_reads_yaml_values_and_exponents():
    got = parse_overrides(["optim.lr=1e-4", "data.tiles=[a, b]", "model.init=null", "run.out=x=y", "a= on"])
    assert got == {
        "optim.lr": 1e-4,
        "data.tiles": ["a", "b"],
        "model.init": None,
        "run.out": "x=y",
        "a": True,
    }
    assert parse_overrides(["mode=inf", "p=[unclosed"]) == {"mode": "inf", "p": "[unclosed"}
    with pytest.raises(SamemError, match=r"^tracker option 'smooth' is not of the form name=value"):
        parse_overrides(["smooth"], "tracker option")
    with pytest.raises(SamemError, match="not of the form"):
        parse_overrides(["=3"])


@dataclasses.dataclass(frozen=True)
class _Inner(Settings):
    size: int = 3
    paths: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class _Outer(Settings):
    name: str = "a"
    rate: float = 0.5
    limit: int | None = None
    inner: _Inner = dataclasses.field(default_factory=_Inner)


def test_load_layers_overrides_and_one_line_errors():
    s = load(_Outer, [{"rate": 1, "inner": {"size": 4}}, {"inner": None}], {"inner.paths": "p", "name": None})
    assert s == _Outer(rate=1, inner=_Inner(size=4, paths=("p",)))
    assert s.inner["size"] == 4 and dict(s)["name"] == "a"  # read-only mapping view
    assert s.to_dict() == {"name": "a", "rate": 1, "limit": None, "inner": {"size": 4, "paths": ["p"]}}
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rate = 2
    with pytest.raises(SamemError) as err:
        load(
            _Outer,
            [{"nmae": 1, "rate": True, "inner": {"size": 2.5, "extra": 1}, "limit": "x"}],
            what="thing",
        )
    msg = str(err.value)
    assert "\n" not in msg
    for part in (
        "unknown thing 'nmae'",
        "thing 'rate' must be a number, got True",
        "thing 'inner.size' must be a whole number, got 2.5",
        "unknown thing 'inner.extra' (known here: size, paths)",
        "thing 'limit' must be a whole number or null, got 'x'",
    ):
        assert part in msg
    with pytest.raises(SamemError, match="'rate' must not be negative"):
        load(_Outer, [], {"rate": -1}, non_negative=True)


@dataclasses.dataclass
class _Group:  # a plain dataclass as a section
    weights: dict[str, float] = dataclasses.field(default_factory=dict)
    pair: tuple[float, float] = (0.0, 1.0)
    count: int | None = None


@dataclasses.dataclass
class _Top:
    rate: float = 0.5
    group: _Group = dataclasses.field(default_factory=_Group)


def test_load_casts_numbers_into_plain_dataclass_sections():
    import numpy as np

    got = load(
        _Top, [{"rate": 1, "group": {"weights": {"a": 2}, "pair": np.array([1, 2]), "count": 3.0}}], cast=True
    )
    assert got == _Top(1.0, _Group({"a": 2.0}, (1.0, 2.0), 3))
    assert type(got.rate) is float and type(got.group.weights["a"]) is float and type(got.group.count) is int
    assert load(_Top, [{"rate": 1}]).rate == 1 and type(load(_Top, [{"rate": 1}]).rate) is int  # no cast
    with pytest.raises(SamemError) as err:
        load(_Top, [{"rate": True, "group": {"weights": {"a": "x"}, "count": 2.5, "pairs": 1}}], cast=True)
    msg = str(err.value)
    for part in (
        "'rate' must be a number, got True",
        "'group.weights' must be a mapping of strings to numbers",
        "'group.count' must be a whole number or null, got 2.5",
        "unknown setting 'group.pairs'",
    ):
        assert part in msg


def test_load_yaml_layers_follows_parents(tmp_path):
    from samem.config import load_yaml_layers

    (tmp_path / "a.yaml").write_text("name: a\nrate: 1\ngroup: {pair: [0, 2], count: 1}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nname: b\ngroup: {count: 2}\n")
    (tmp_path / "c.yaml").write_text("base: b.yaml\ngroup: {weights: {x: 1}}\n")
    layers = load_yaml_layers(tmp_path / "c.yaml", not_inherited=("name",))
    assert layers == [
        {"rate": 1, "group": {"pair": [0, 2], "count": 1}},
        {"group": {"count": 2}},
        {"group": {"weights": {"x": 1}}},
    ]
    assert load(_Top, layers, cast=True) == _Top(1.0, _Group({"x": 1.0}, (0.0, 2.0), 2))
    (tmp_path / "a.yaml").write_text("base: c.yaml\n")
    with pytest.raises(
        SamemError, match=r"^thing inheritance loops: .*c.yaml -> .*b.yaml -> .*a.yaml -> .*c.yaml$"
    ):
        load_yaml_layers(tmp_path / "c.yaml", what="thing")
    with pytest.raises(SamemError, match=r"not found.*; shipped things: (.*, )?serve, stats"):
        load_yaml_layers(tmp_path / "nope.yaml", what="thing")


def test_stats_defaults_are_the_shipped_file():
    assert load_config() == StatsConfig()
    assert load_config().to_dict() == load_yaml("stats")
    cfg = load_config({"max_lag": 10, "fit": {"fraction": 0.5}})
    assert (cfg.max_lag, cfg.vacf.max_lag, cfg.fit.fraction, cfg.fit.min_lags) == (10, 10, 0.5, 4)
    assert load_config(cfg) is cfg
    with pytest.raises(SamemError, match="unknown stats option 'fit.fractio'"):
        load_config({"fit": {"fractio": 0.5}})
    with pytest.raises(SamemError, match="exclude_edge' must be true or false"):
        load_config({"exclude_edge": 1})


def test_train_configs_and_run_folder(tmp_path):
    for name in [n.split("/", 1)[1] for n in shipped_names() if n.startswith("train/")]:
        cfg = load_train_config(name)
        assert isinstance(cfg, TrainConfig)
        assert Path(cfg.run.out) == Path("~/samem-runs").expanduser() / name  # outside the checkout
        assert yaml.safe_load(yaml.safe_dump(cfg.to_dict(), sort_keys=False)) == cfg.to_dict()
    assert load_train_config("tiny", [f"run.out={tmp_path}"]).run.out == str(tmp_path)
    assert load_train_config("tiny", ["run.out=~/x"]).run.out == str(Path("~/x").expanduser())
    path = tmp_path / "mine.yaml"
    path.write_text("data: {tiles: one, tiles_fraction: 0.5}\noptim: {betas: [0.8, 0.9]}\n")
    cfg = load_train_config(path, ["optim.lr=1e-4", "model.init=null"])
    assert cfg.data.tiles == ("one",) and cfg.optim.betas == (0.8, 0.9) and cfg.optim.lr == 1e-4
    assert Path(cfg.run.out).name == "mine"
    with pytest.raises(SamemError, match=r"^training config tiny: unknown key 'optim.lrr'"):
        load_train_config("tiny", ["optim.lrr=1"])
    with pytest.raises(SamemError, match="the key must be section.key"):
        load_train_config("tiny", ["steps=1"])
    with pytest.raises(SamemError, match="'data.tiles_val' must be a whole number"):
        load_train_config("tiny", ["data.tiles_val=1.5"])


def test_serve_defaults_are_the_shipped_file(tmp_path):
    from samem.stream.settings import ServeSettings, load_settings

    assert load_settings() == ServeSettings()
    assert ServeSettings().to_dict() == load_yaml("serve")
    user = tmp_path / "serve.yaml"
    user.write_text("ingest: {policy: block}\nmodel: {tracker: {smooth_frames: 3}}\nstats: null\n")
    s = load_settings(
        user, {"model.tracker": {"smooth_frames": 1}, "prompts.auto": None, "recording.file": tmp_path}
    )
    assert (s.ingest.policy, s.model.tracker, s.prompts.auto) == ("block", {"smooth_frames": 1}, False)
    assert s.recording.file == str(tmp_path) and s["ingest"]["policy"] == "block"
    with pytest.raises(SamemError, match=r"^unknown serve setting 'ingest.polcy' \(known here: queue_frames"):
        load_settings(None, {"ingest.polcy": "block"})
    with pytest.raises(SamemError, match="serve setting 'feedback.rate_margin' must not be negative"):
        load_settings(None, {"feedback.rate_margin": -1})


def test_batch_defaults_are_the_shipped_file(tmp_path):
    from samem.batch import BatchConfig, load_batch_config

    assert load_batch_config() == BatchConfig() and BatchConfig().to_dict() == load_yaml("batch")
    user = tmp_path / "batch.yaml"
    user.write_text("cluster: {processes: false}\ntorch_threads: 2\n")
    cfg = load_batch_config(user, {"summary.plot_formats": ["png"]})
    assert (cfg.cluster.processes, cfg.cluster.timeout_s, cfg.torch_threads) == (False, 60, 2)
    assert cfg.summary.plot_formats == ("png",)
    with pytest.raises(SamemError, match="torch_threads must be at least 1 or auto"):
        load_batch_config({"torch_threads": "many"})
    with pytest.raises(SamemError, match="unknown batch setting 'cluster.worker'"):
        load_batch_config({"cluster": {"worker": 2}})
