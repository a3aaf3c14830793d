"""Domain randomisation: draw concrete parameters from a recipe's ``randomize`` section.

Each entry maps a parameter name (flat, or dotted like ``imaging.thickness_nm``) to one
distribution:

* ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}`` (lo > 0), ``{integers: [lo, hi]}`` (inclusive);
* ``{choice: [a, b, ...]}`` (any values, also ``null`` or ``[lo, hi]`` pairs);
* ``{subrange: [lo, hi]}`` for ``[lo, hi]`` parameters: two log-uniform draws, sorted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from samem.errors import SamemError
from samem.synthetic.params import SynthParams

KINDS = ("uniform", "loguniform", "integers", "choice", "subrange")


def draw(spec: Any, rng: np.random.Generator, name: str = "value") -> Any:
    """One value from a distribution spec (see module docstring)."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise SamemError(f"randomize.{name}: expected one of {{{', '.join(KINDS)}: ...}}, got {spec!r}")
    kind, arg = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise SamemError(f"randomize.{name}: choice needs a non-empty list")
        return arg[int(rng.integers(len(arg)))]
    try:
        lo, hi = (float(v) for v in arg)
    except (TypeError, ValueError):
        raise SamemError(f"randomize.{name}: {kind} needs [lo, hi], got {arg!r}") from None
    if hi < lo or (kind in ("loguniform", "subrange") and lo <= 0):
        raise SamemError(f"randomize.{name}: bad bounds {arg!r} for {kind}")
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "integers":
        return int(rng.integers(int(lo), int(hi) + 1))
    logs = rng.uniform(np.log(lo), np.log(hi), size=2 if kind == "subrange" else 1)
    vals = np.sort(np.exp(logs))
    return [float(v) for v in vals] if kind == "subrange" else float(vals[0])


def sample(params: SynthParams, rng: np.random.Generator) -> SynthParams:
    """A copy of ``params`` with every ``randomize`` entry drawn once (and ``randomize`` emptied)."""
    drawn = {key: draw(spec, rng, key) for key, spec in sorted(params.randomize.items())}
    return params.replace(randomize={}, **drawn)
