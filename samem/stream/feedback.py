"""Closed-loop advice for the acquisition, published on the ``feedback`` topic.

Per processed frame: the frame's SNR estimate and any events:

- ``recentre``: a tracked particle is within ``edge_margin_px`` of the border; moving the
  field of view by ``(dx_nm, dy_nm)`` (x = columns, to the right; y = rows, down) puts it at
  the centre. Repeated for one particle at most every ``recentre_cooldown_frames``.
- ``object_lost``: a particle has been reported absent on ``lost_after_frames`` consecutive
  frames (its last known position and the first absent frame, ``since``); ``object_found``:
  a particle reported lost is present again. Shorter gaps (a faint particle the tracker's
  position check does not confirm on a frame or two) raise no event.
- ``falling_behind``: frames wait in the queue or were dropped; ``suggested_fps`` is
  ``rate_margin`` x the measured processing rate.

SNR follows the synthetic generator's definition, (mean background - mean particle) /
std(background): positive for dark particles. Settings: the ``feedback`` section of
``configs/serve.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from samem.config import load
from samem.stream.settings import FeedbackSettings


def estimate_snr(frame: np.ndarray, labels: np.ndarray, ring_px: int = 3) -> float | None:
    """Per-pixel SNR of one frame from its label image.

    Parameters
    ----------
    frame : ndarray
        (H, W) raw frame.
    labels : ndarray
        (H, W) labels, 0 = background.
    ring_px : int
        Pixels around particles left out of the background (blur and mask errors).

    Returns
    -------
    float or None
        (mean background - mean particle) / std(background); None without particles or
        background.
    """
    particle = (labels > 0).astype(np.uint8)
    if not particle.any():
        return None
    size = 2 * int(ring_px) + 1
    near = (
        cv2.dilate(particle, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        if ring_px > 0
        else particle
    )
    background = (near == 0).astype(np.uint8)
    if int(background.sum()) < 2:
        return None
    img = np.asarray(frame)
    if img.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        img = img.astype(np.float64)
    bg_mean, bg_std = (float(v[0, 0]) for v in cv2.meanStdDev(img, mask=background))
    if not bg_std > 0:
        return None
    return float((bg_mean - cv2.mean(img, mask=particle)[0]) / bg_std)


class FeedbackAdvisor:
    """Turn per-frame tracking results and service load into feedback messages.

    Parameters
    ----------
    config : FeedbackSettings or mapping
        ``feedback`` settings (a mapping: over the defaults).
    frame_shape : tuple of int
        (H, W), pixels.
    pixel_size_nm : float or None
        nm/px for stage shifts; None gives shifts in pixels only.
    """

    def __init__(
        self,
        config: FeedbackSettings | Mapping[str, Any],
        frame_shape: tuple[int, int],
        pixel_size_nm: float | None,
    ):
        if not isinstance(config, FeedbackSettings):
            config = load(FeedbackSettings, [config], what="feedback setting")
        self.cfg = config
        self.height, self.width = frame_shape
        self.pixel_size_nm = pixel_size_nm
        self._present: dict[Any, bool] = {}  # reported lost -> False
        self._absent: dict[Any, int] = {}  # consecutive absent frames
        self._last_seen: dict[Any, tuple] = {}  # last present (x, y)
        self._last_recentre: dict[Any, int] = {}
        self._last_behind = -math.inf
        self._dropped_reported = 0

    def on_frame(
        self,
        seq: int,
        objects: Mapping[Any, Mapping[str, Any]],
        frame: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """Feedback for one processed frame.

        Parameters
        ----------
        seq : int
            Frame number.
        objects : mapping
            ``{id: {"x": px, "y": px, "present": bool, ...}}``.
        frame, labels : ndarray, optional
            Raw frame and label image for the SNR estimate.

        Returns
        -------
        dict
            ``{"seq", "snr", "events": [...]}``.
        """
        events = []
        need = max(1, self.cfg.lost_after_frames)
        for pid, obj in objects.items():
            present = bool(obj.get("present"))
            was = self._present.get(pid)
            if present:
                self._absent[pid] = 0
                self._last_seen[pid] = (obj.get("x"), obj.get("y"))
                if was is False:
                    events.append(
                        {"kind": "object_found", "particle": pid, "x": obj.get("x"), "y": obj.get("y")}
                    )
                self._present[pid] = True
            else:
                self._absent[pid] = self._absent.get(pid, 0) + 1
                if was is True and self._absent[pid] >= need:
                    x, y = self._last_seen.get(pid, (None, None))
                    events.append(
                        {"kind": "object_lost", "particle": pid, "x": x, "y": y, "since": seq - need + 1}
                    )
                    self._present[pid] = False
                elif was is None and self._absent[pid] >= need:
                    self._present[pid] = False
            if present:
                event = self._recentre(seq, pid, float(obj["x"]), float(obj["y"]))
                if event:
                    events.append(event)
        for pid in set(self._present) - set(objects):  # removed objects
            del self._present[pid]
            self._absent.pop(pid, None)
            self._last_seen.pop(pid, None)
            self._last_recentre.pop(pid, None)
        snr = None
        if frame is not None and labels is not None:
            snr = estimate_snr(frame, labels, self.cfg.snr_ring_px)
        return {"seq": seq, "snr": snr, "events": events}

    def _recentre(self, seq: int, pid, x: float, y: float) -> dict | None:
        m = self.cfg.edge_margin_px
        near_edge = x < m or y < m or x > self.width - 1 - m or y > self.height - 1 - m
        if not near_edge:
            return None
        last = self._last_recentre.get(pid)
        if last is not None and seq - last < self.cfg.recentre_cooldown_frames:
            return None
        self._last_recentre[pid] = seq
        dx_px, dy_px = x - (self.width - 1) / 2, y - (self.height - 1) / 2
        nm = self.pixel_size_nm
        return {
            "kind": "recentre",
            "particle": pid,
            "x": x,
            "y": y,
            "dx_px": dx_px,
            "dy_px": dy_px,
            "dx_nm": None if nm is None else dx_px * nm,
            "dy_nm": None if nm is None else dy_px * nm,
        }

    def on_load(
        self, now_s: float, lag_frames: int, dropped_total: int, processing_fps: float | None
    ) -> dict[str, Any] | None:
        """A ``falling_behind`` event when the queue is deep or frames were dropped, else None.

        Parameters
        ----------
        now_s : float
            Monotonic clock, s (for the cooldown).
        lag_frames : int
            Frames waiting to be processed.
        dropped_total : int
            Frames dropped so far.
        processing_fps : float or None
            Recent processing rate, frames/s.
        """
        new_drops = dropped_total - self._dropped_reported
        if lag_frames < self.cfg.lag_warn_frames and new_drops <= 0:
            return None
        if now_s - self._last_behind < self.cfg.behind_cooldown_s:
            return None
        self._last_behind = now_s
        self._dropped_reported = dropped_total
        suggested = None if not processing_fps else self.cfg.rate_margin * processing_fps
        return {
            "kind": "falling_behind",
            "lag_frames": int(lag_frames),
            "dropped_frames": int(dropped_total),
            "new_dropped_frames": int(max(new_drops, 0)),
            "processing_fps": processing_fps,
            "suggested_fps": suggested,
        }
