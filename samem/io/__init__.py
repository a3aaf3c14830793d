"""Reading and writing data.

Inputs: :mod:`samem.io.base` (the reader protocol), :mod:`samem.io.formats` (one module per
format family) and :mod:`samem.io.readers` (the registry by suffix and ``open_video``).
Outputs: :mod:`samem.io.recorder` (results files), :mod:`samem.io.table` (HDF5 tables),
:mod:`samem.io.h5` (opening HDF5 files).
"""
