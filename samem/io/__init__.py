"""Reading and writing data: HDF5 tables, video readers, recorders."""
