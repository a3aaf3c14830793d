"""DataFrames as HDF5 compound datasets, readable with plain h5py or pandas.

A table is one 1-D compound dataset, chunked and resizable so that recorders can append
rows while other processes read (SWMR). ``pandas.DataFrame(f["tracks"][()])`` reads one
without samem; :func:`read_table` also decodes string columns.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

_STR = h5py.string_dtype("utf-8")


def _record_dtype(df: pd.DataFrame) -> np.dtype:
    fields = []
    for name, col in df.items():
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            fields.append((str(name), _STR))
        elif col.dtype == bool:
            fields.append((str(name), np.bool_))
        else:
            fields.append((str(name), col.to_numpy().dtype))
    return np.dtype(fields)


def to_records(df: pd.DataFrame, dtype: np.dtype | None = None) -> np.ndarray:
    """Convert a DataFrame to a structured array with the table's dtype."""
    dtype = dtype or _record_dtype(df)
    out = np.empty(len(df), dtype=dtype)
    for name in dtype.names:
        out[name] = df[name].to_numpy()
    return out


def write_table(
    group: h5py.Group, name: str, df: pd.DataFrame, chunk_rows: int = 4096, **attrs
) -> h5py.Dataset:
    """Write ``df`` as a resizable compound dataset ``group[name]`` (replacing any old one)."""
    if name in group:
        del group[name]
    rec = to_records(df)
    ds = group.create_dataset(
        name, data=rec, maxshape=(None,), chunks=(max(1, min(chunk_rows, max(len(rec), 1))),)
    )
    for k, v in attrs.items():
        ds.attrs[k] = v
    return ds


def create_table(group: h5py.Group, name: str, columns: dict[str, np.dtype | str], chunk_rows: int = 4096):
    """Create an empty appendable table with the given column dtypes (``str`` for text)."""
    fields = [(c, _STR if t is str else np.dtype(t)) for c, t in columns.items()]
    return group.create_dataset(
        name, shape=(0,), maxshape=(None,), dtype=np.dtype(fields), chunks=(chunk_rows,)
    )


def append_rows(ds: h5py.Dataset, df: pd.DataFrame) -> None:
    """Append the rows of ``df`` (columns must match the table's) to a table dataset."""
    if len(df) == 0:
        return
    rec = to_records(df, ds.dtype)
    n = ds.shape[0]
    ds.resize((n + len(rec),))
    ds[n:] = rec


def read_table(ds: h5py.Dataset) -> pd.DataFrame:
    """Read a table dataset into a DataFrame, decoding text columns to ``str``."""
    rec = ds[()]
    df = pd.DataFrame({name: rec[name] for name in rec.dtype.names})
    for name in rec.dtype.names:
        if h5py.check_string_dtype(ds.dtype[name]) is not None:
            df[name] = [v.decode() if isinstance(v, bytes) else v for v in df[name]]
    return df
