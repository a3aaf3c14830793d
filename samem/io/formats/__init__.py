"""One module per family of input formats, each providing :class:`samem.io.base.VideoReader` subclasses.

``hdf5`` (``samem synth`` output, results files), ``tiff`` (stacks, with ImageJ and vendor
calibration), ``video`` (MP4/AVI/MOV/MKV), ``images`` (folders of images, label masks) and
``em`` (DM3/DM4, MRC, EMD through RosettaSciIO). Which reader opens which suffix is decided in
one place, the registry of :mod:`samem.io.readers`; no module here registers itself.
"""
