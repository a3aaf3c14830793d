"""Writers of small, valid electron-microscopy files for tests (RosettaSciIO ships no test data).

Each writer produces the on-disk layout the microscope software writes, reduced to what a
reader needs: the frames and their calibration. Units are passed as the file stores them
(e.g. ``"µm"``, ``"ms"``, Ångström) so that tests can check that readers convert them.

Formats
-------
Gatan DM3/DM4 (:func:`write_dm`)
    The public tag-file layout: a header (version, length, byte order), then a tree of tag
    groups and data tags. Header words, tag-name lengths, tag lengths (DM4) and the
    "info" words describing each data tag are big-endian; the tag values and the image
    data are in the byte order the header announces (little-endian here). DM3 uses 4-byte
    counts and sizes, DM4 8-byte ones and adds, after each tag name, the byte length of
    what follows. An image lives in ``ImageList/<n>/ImageData`` with ``Data`` (the pixels,
    x fastest), ``DataType`` (Gatan's type code), ``Dimensions`` (x, y[, z] sizes) and
    ``Calibrations/Dimension`` (per axis ``Origin``, ``Scale``, ``Units``). Like GMS we
    write a thumbnail as image 0 and list it under ``Thumbnails``.
MRC (:func:`write_mrc`)
    MRC2014: a 1024-byte header of 4-byte words (NX, NY, NZ, MODE, ..., cell lengths in Å
    at words 10-12, the map signature ``"MAP "`` at word 52 and the machine stamp at 53),
    no extended header, then the (NZ, NY, NX) data.
Velox EMD (:func:`write_velox_emd`)
    HDF5 as Thermo Fisher Velox writes it: ``/Version`` (a JSON string), and per image
    ``/Data/Image/<uuid>/Data`` shaped (rows, columns, frames) with the metadata JSON stored
    as UTF-8 bytes in the first column of ``/Data/Image/<uuid>/Metadata``. Pixel sizes are
    strings in metres, the frame time in seconds.
Berkeley (NCEM) EMD (:func:`write_berkeley_emd`)
    Written by RosettaSciIO's own EMD writer, which stores per dimension a ``dim<n>`` vector
    with ``name`` and ``units`` attributes.
FEI/Thermo Fisher TIFF (:func:`write_fei_tiff`)
    A multi-page TIFF whose first page carries the FEI metadata tag (34682, INI text with
    ``[Scan] PixelWidth`` in metres), as SEM/FIB software writes it.
"""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path

import h5py
import numpy as np

# --------------------------------------------------------------------------- Gatan DM3/DM4

#: numpy dtype -> (Gatan image DataType code, tag element type code of the Data array)
_DM_IMAGE_TYPES = {
    np.dtype("int16"): (1, 2),
    np.dtype("float32"): (2, 6),
    np.dtype("uint8"): (6, 10),
    np.dtype("int32"): (7, 3),
    np.dtype("int8"): (9, 10),
    np.dtype("uint16"): (10, 4),
    np.dtype("uint32"): (11, 5),
    np.dtype("float64"): (12, 7),
}
# tag element type codes of scalar values
_DM_LONG, _DM_FLOAT, _DM_USHORT = 3, 6, 4
_DM_FORMAT = {_DM_LONG: "<i", _DM_FLOAT: "<f"}


class _DMWriter:
    """Encode a tag tree (nested dicts / lists of values) as DM3 (version 3) or DM4 (version 4)."""

    def __init__(self, version: int):
        if version not in (3, 4):
            raise ValueError("DM version must be 3 or 4")
        self.version = version

    def count(self, n: int) -> bytes:
        """A big-endian count/size word: 4 bytes in DM3, 8 in DM4."""
        return struct.pack(">Q" if self.version == 4 else ">I", n)

    def data_tag(self, info: list[int], payload: bytes) -> bytes:
        return b"%%%%" + self.count(len(info)) + b"".join(self.count(i) for i in info) + payload

    def value(self, v) -> bytes:
        """Body of a data tag holding ``v`` (int, float, str or ndarray)."""
        if isinstance(v, np.ndarray):
            _, eltype = _DM_IMAGE_TYPES[v.dtype]
            payload = np.ascontiguousarray(v).astype(v.dtype.newbyteorder("<")).tobytes()
            return self.data_tag([20, eltype, v.size], payload)
        if isinstance(v, str):  # GMS stores text as an array of 2-byte characters
            return self.data_tag([20, _DM_USHORT, len(v)], v.encode("utf-16-le"))
        if isinstance(v, (bool, int, np.integer)):
            return self.data_tag([_DM_LONG], struct.pack(_DM_FORMAT[_DM_LONG], int(v)))
        return self.data_tag([_DM_FLOAT], struct.pack(_DM_FORMAT[_DM_FLOAT], float(v)))

    def group(self, items: list[tuple[str, object]]) -> bytes:
        """Body of a tag group: sorted flag, open flag, tag count, then the tags."""
        body = b"".join(self.tag(name, v) for name, v in items)
        return b"\x00\x00" + self.count(len(items)) + body

    def tag(self, name: str, v) -> bytes:
        if isinstance(v, dict):
            kind, body = 20, self.group(list(v.items()))
        elif isinstance(v, list):  # an unnamed list, e.g. ImageList
            kind, body = 20, self.group([("", item) for item in v])
        else:
            kind, body = 21, self.value(v)
        raw = name.encode("latin-1")
        head = struct.pack(">BH", kind, len(raw)) + raw
        if self.version == 4:
            head += self.count(len(body))
        return head + body

    def file(self, root: dict) -> bytes:
        body = self.group(list(root.items())) + b"\x00" * 8
        return struct.pack(">i", self.version) + self.count(len(body)) + struct.pack(">i", 1) + body


def _dm_image(data: np.ndarray, scales: list[float], units: list[str], name: str) -> dict:
    """One ImageList entry; ``scales``/``units`` in DM axis order (x, y, z)."""
    code, _ = _DM_IMAGE_TYPES[data.dtype]
    dims = list(data.shape[::-1])
    return {
        "ImageData": {
            "Calibrations": {
                "Brightness": {"Origin": 0.0, "Scale": 1.0, "Units": "Counts"},
                "Dimension": [{"Origin": 0.0, "Scale": float(s), "Units": u} for s, u in zip(scales, units)],
                "DisplayCalibratedUnits": 1,
            },
            "Data": data.ravel(),
            "DataType": code,
            "Dimensions": dims,
            "PixelDepth": data.dtype.itemsize,
        },
        "ImageTags": {"Acquisition": {"Parameters": {"Detector": {"exposure_s": 0.01}}}},
        "Name": name,
        "UniqueID": {"0": 1, "1": 2, "2": 3, "3": 4},
    }


def write_dm(
    path: str | Path,
    frames: np.ndarray,
    version: int = 4,
    pixel_size: tuple[float, str] | None = (1.0, "nm"),
    frame_interval: tuple[float, str] | None = (1.0, "s"),
) -> Path:
    """Write a (T, H, W) or (H, W) stack as a Gatan DM3/DM4 file.

    Parameters
    ----------
    path : str or Path
        Output file (``.dm3`` / ``.dm4``).
    frames : ndarray
        Image data; dtype one of int8/16/32, uint8/16/32, float32/64.
    version : {3, 4}
        DM file version.
    pixel_size : (float, str) or None
        Scale of the x and y axes with its unit as GMS writes it (e.g. ``(0.0015, "µm")``);
        None writes an uncalibrated image (scale 1, no unit).
    frame_interval : (float, str) or None
        Scale of the z (time) axis with its unit (e.g. ``(40.0, "ms")``); None: uncalibrated.
    """
    frames = np.asarray(frames)
    px, pu = pixel_size if pixel_size is not None else (1.0, "")
    scales, units = [px, px], [pu, pu]
    if frames.ndim == 3:
        ft, fu = frame_interval if frame_interval is not None else (1.0, "")
        scales.append(ft)
        units.append(fu)
    thumb = np.zeros((8, 8), dtype=np.uint8)
    root = {
        "ApplicationBounds": [0, 0, 100, 100],
        "ImageList": [
            _dm_image(thumb, [1.0, 1.0], ["", ""], "thumbnail"),
            _dm_image(frames, scales, units, Path(path).stem),
        ],
        "Thumbnails": [{"ImageIndex": 0, "SourceSize_Pixels": [8, 8]}],
    }
    path = Path(path)
    path.write_bytes(_DMWriter(version).file(root))
    return path


# --------------------------------------------------------------------------- MRC

_MRC_MODES = {np.dtype("uint8"): 0, np.dtype("int16"): 1, np.dtype("float32"): 2, np.dtype("uint16"): 6}


def write_mrc(path: str | Path, frames: np.ndarray, pixel_size_A: float | None = 1.0) -> Path:
    """Write a (T, H, W) stack as an MRC2014 file with pixel size ``pixel_size_A`` (Å/px).

    ``pixel_size_A=None`` writes zero cell lengths (uncalibrated).
    """
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    nz, ny, nx = frames.shape
    words = np.zeros(256, dtype="<i4")
    words[0:3] = nx, ny, nz
    words[3] = _MRC_MODES[frames.dtype]
    words[7:10] = nx, ny, nz  # sampling grid = image size
    words[16:19] = 1, 2, 3  # columns, rows, sections
    floats = words.view("<f4")
    a = float(pixel_size_A) if pixel_size_A is not None else 0.0
    floats[10:13] = nx * a, ny * a, nz * a  # cell lengths, Å
    floats[13:16] = 90.0
    floats[19:22] = frames.min(), frames.max(), frames.mean()
    header = bytearray(words.tobytes())
    header[208:212] = b"MAP "
    header[212:216] = bytes([0x44, 0x44, 0, 0])  # little-endian machine stamp
    path = Path(path)
    path.write_bytes(bytes(header) + frames.astype(frames.dtype.newbyteorder("<")).tobytes())
    return path


# --------------------------------------------------------------------------- Velox EMD


def _json_column(obj: dict, n_frames: int) -> np.ndarray:
    raw = np.frombuffer(json.dumps(obj).encode("utf-8"), dtype=np.uint8)
    col = np.zeros((raw.size + 1, n_frames), dtype=np.uint8)
    col[: raw.size, :] = raw[:, None]
    return col


def write_velox_emd(
    path: str | Path,
    frames: np.ndarray,
    pixel_size_m: float | None = 1e-9,
    frame_time_s: float | None = 0.05,
    extra_images: int = 0,
) -> Path:
    """Write a (T, H, W) stack as a Velox EMD file (TEM camera movie layout).

    Parameters
    ----------
    frames : ndarray
        The movie; stored as (H, W, T) chunked one frame per chunk, as Velox does.
    pixel_size_m : float or None
        Pixel size in metres (Velox's unit); None omits the calibration.
    frame_time_s : float or None
        ``Scan/FrameTime`` in seconds; None omits it (the camera exposure time, 1 ms, is
        then what the file offers).
    extra_images : int
        Additional single-frame images (another detector) stored before the movie.
    """
    frames = np.asarray(frames)
    path = Path(path)
    with h5py.File(path, "w") as f:
        version = json.dumps({"format": "Velox", "version": "11"}).encode()
        f.create_dataset("Version", data=np.array([version]))
        group = f.create_group("Data/Image")
        stacks = [frames[:1] for _ in range(extra_images)] + [frames]
        for stack in stacks:
            meta = {
                "Acquisition": {"AcquisitionStartDatetime": {"DateTime": "1700000000"}},
                "BinaryResult": {"DetectorIndex": "0", "Offset": {"x": "0", "y": "0"}},
                "Detectors": {"Detector-0": {"DetectorName": "BM-Ceta", "ExposureTime": "0.001"}},
                "Scan": {} if frame_time_s is None else {"FrameTime": repr(float(frame_time_s))},
                "CustomProperties": {},
            }
            if pixel_size_m is not None:
                size = repr(float(pixel_size_m))
                meta["BinaryResult"]["PixelSize"] = {"width": size, "height": size}
                meta["BinaryResult"]["PixelUnitX"] = "m"
                meta["BinaryResult"]["PixelUnitY"] = "m"
            key = uuid.uuid4().hex
            sub = group.create_group(key)
            data = np.ascontiguousarray(np.moveaxis(stack, 0, -1))
            sub.create_dataset("Data", data=data, chunks=(data.shape[0], data.shape[1], 1))
            sub.create_dataset("Metadata", data=_json_column(meta, data.shape[2]))
    return path


# --------------------------------------------------------------------------- Berkeley EMD


def write_berkeley_emd(
    path: str | Path,
    frames: np.ndarray,
    pixel_size: tuple[float, str] | None = (1.0, "nm"),
    frame_interval: tuple[float, str] | None = (1.0, "s"),
) -> Path:
    """Write a (T, H, W) stack as a Berkeley (NCEM) EMD file with RosettaSciIO's writer."""
    from rsciio.emd import file_writer

    frames = np.asarray(frames)
    px, pu = pixel_size if pixel_size is not None else (1.0, None)
    ft, fu = frame_interval if frame_interval is not None else (1.0, None)
    axes = [
        {"name": "time", "size": frames.shape[0], "scale": ft, "offset": 0.0, "units": fu, "navigate": True},
        {"name": "y", "size": frames.shape[1], "scale": px, "offset": 0.0, "units": pu, "navigate": False},
        {"name": "x", "size": frames.shape[2], "scale": px, "offset": 0.0, "units": pu, "navigate": False},
    ]
    signal = {
        "data": frames,
        "axes": axes,
        "metadata": {"General": {"title": "movie"}, "Signal": {"signal_type": ""}},
        "original_metadata": {},
    }
    path = Path(path)
    file_writer(str(path), signal)
    return path


# --------------------------------------------------------------------------- FEI TIFF


def write_fei_tiff(path: str | Path, frames: np.ndarray, pixel_size_m: float = 1e-9) -> Path:
    """Write a multi-page TIFF whose first page carries FEI metadata with ``PixelWidth`` in metres."""
    import tifffile

    frames = np.asarray(frames)
    text = f"[User]\nUser=test\n[Scan]\nPixelWidth={pixel_size_m!r}\nPixelHeight={pixel_size_m!r}\n"
    path = Path(path)
    with tifffile.TiffWriter(path) as tif:
        for i, frame in enumerate(frames):
            extratags = [(34682, "s", 0, text, True)] if i == 0 else []
            tif.write(frame, contiguous=False, extratags=extratags, metadata=None)
    return path
