"""Settings of :class:`samem.track.StreamingTracker`.

Precedence (last wins): the defaults below, the ``tracker:`` and ``preprocess:`` sections of
the model's config (``configs/model/*.yaml``, also stored in samem checkpoints), then
arguments given to the tracker.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from samem.config import convert, parse_overrides
from samem.errors import SamemError
from samem.track.centroid import RING

MODES = ("roi", "full")
CENTROIDS = ("mask", "intensity", "matched")


@dataclass(frozen=True)
class TrackerOptions:
    """Tracker settings (units in the names; pixels are native frame pixels).

    Attributes
    ----------
    mode
        ``"roi"``: one square window per object around its predicted position, cut at
        native resolution and resized to the model's input (all windows encoded as one
        batch). ``"full"``: the whole frame resized to the model's input, as sam2's video
        predictor does.
    crop_size_px
        Smallest ROI window side in frame pixels; ``None`` = the model's image size (native
        resolution).
    context
        ROI policy for large objects: the window side is
        ``max(crop_size_px, context * longest side of the prompt box)``; larger windows are
        downsampled to the model's input. The side is fixed when the object is prompted so that
        its memory always sees it at one scale.
    velocity_gain
        ROI window centre for the next frame = last centroid + ``velocity_gain`` x last
        displacement (0: last centroid; Brownian particles have no useful velocity). An absent
        object's window stays where it was last seen.
    max_cond_frames
        Conditioning (prompted) frames kept per object; the most recent win.
    clear_memory_on_prompt
        A correcting prompt on a tracked object also forgets its recent (non-prompted) memory.
    memory_dtype
        Storage dtype of spatial memories, ``"bfloat16"`` (as sam2's predictor) or ``"float32"``.
    num_threads
        ``torch.set_num_threads`` value applied when the tracker is created (``None``: leave).
    cuda_bf16
        On CUDA, run under ``torch.autocast(dtype=torch.bfloat16)``.
    cpu_bf16
        On CPU, run the image encoder under ``torch.autocast("cpu", dtype=torch.bfloat16)``
        (its features are then cast back to float32; the rest of the step stays fp32). Off by
        default: fp32 is the reference. Pays on CPUs with bf16 instructions (AVX512-BF16, AMX),
        where the encoder of 32 windows costs about 0.6 x its fp32 time; the features differ by
        about 1 % of their range (accuracy: docs/tracker.md, Speed).
    window_peak
        ROI mode, with ``verify``: before SAM 2 looks at a frame, each tracked, present
        object's window is moved from where it waits (the object's position on the frame
        before) towards the strongest peak of the position check's detector on that frame
        alone, by at most one per-axis step spread of the particle. The peak must lie within
        one frame's motion gate, away from the other objects, and be as strong as a peak that
        may prompt the object again (``verify_peak_z``, ``verify_peak_fraction``). SAM 2's
        masks lean towards the centre of their window: on a particle that moves several
        pixels per frame the mask, and so the position, trails it.
    batch_memories
        Run SAM 2's step for every tracked object in one batch even when their memories hold
        different frames (one object's doubtful frame kept out by the position check, a
        re-prompt): memory attention over padded memories with a key mask
        (:mod:`samem.track.mixed`); the same result per object up to float rounding. False:
        one batch per memory layout (sam2's own code path). Models whose memory attention is
        not sam2's run one batch per layout either way.
    reappear_score
        Hysteresis of the object-present decision: an object absent on its previous frame is
        reported (and remembered) present again only when SAM 2's object score reaches this
        probability; a present object stays present above 0.5. 0.5 switches it off. Keeps a
        particle that left the field of view from being re-found in noise blobs.
    reappear_iou
        An absent object last seen near the edge (see ``reappear_edge``) also needs SAM 2's
        predicted IoU of its best mask to reach this (0-1) to come back: masks drawn on noise
        blobs are predicted poor. 0 switches it off.
    reappear_frames
        ... and both conditions on this many consecutive frames (the earlier ones are
        reported absent): a particle stays, noise blobs come and go. 1 switches it off.
    reappear_edge
        "Near the edge": the object's last centre within this many prompt-box sizes (longest
        side) of the frame border, where a vanished particle has probably left the field. A
        large value (e.g. 1000) applies ``reappear_iou``/``reappear_frames`` everywhere.
    lost_iou, lost_frames
        A present object whose predicted IoU stays below ``lost_iou`` on ``lost_frames``
        consecutive frames is reported absent (a track that has slid onto noise); 0: never.
        All these presence rules: :mod:`samem.track.presence`.
    smooth_frames
        Reported masks are the object-aligned mean of the mask probability over this many
        frames (the current one and the previous ones while the object stayed present; each
        shifted so its centroid lies on the current centroid), thresholded at 0.5
        (:mod:`samem.track.smooth`). Causal; SAM 2's memory still uses the model's own masks.
        1 switches it off.
    centroid
        ``"mask"``: the reported position is the mean pixel index of the reported mask.
        ``"intensity"``: the particle's contrast against its local background, weighted over
        the slightly dilated mask (:mod:`samem.track.centroid`): less noisy than the mask's
        boundary. ``"matched"``: starting from the intensity centroid, the position where the
        particle's running-mean appearance (its template) best matches the frame, plus the
        template's own centre of contrast (:mod:`samem.track.matched`): it weighs the frame
        by what the particle looks like over many frames rather than by one frame's noisy
        contrast (the default: the least noisy of the three on tuning videos). Masks, presence
        and the ROI window are the same in all three.
    centroid_ring
        Width of the ring around the mask on which ``"intensity"`` and ``"matched"`` fit the
        background plane, as a fraction of the prompt-box side (longest side); pixels off the
        plane, such as a neighbouring particle, are dropped from the fit.
    matched_rate, matched_half
        ``"matched"``: the smallest weight of a new frame in the template (about
        ``1 / matched_rate`` frames shape it) and half the template's side as a fraction of
        the prompt-box side (longest side).
    mask_to_centroid
        With ``centroid`` ``"intensity"`` or ``"matched"``, the reported mask is moved
        (sub-pixel) so that its own centroid lies on the reported position: placed where the
        particle's contrast says it is rather than where its noisy boundary does. Its shape is
        unchanged; SAM 2's memory and the ROI window still follow the model's own mask.
    edge_centre
        For a particle cut by one frame border, report the centre of the whole particle, not
        of its visible part (:mod:`samem.track.edge`): the centroid is moved outward by the
        offset a disc of the particle's typical area (median of its last whole masks) has
        when the mask's area is the visible part. The position may lie outside the frame;
        the ``edge`` flag of the trajectory table still marks such frames.
    mirror
        Also track every object on its left-right mirrored input (the same ROI window, or the
        same resized frame, flipped), with a second SAM 2 memory of its own: the two views'
        object scores and predicted IoUs are averaged before the presence rule decides (one
        decision for both memories), and their mask logits (the mirrored one flipped back) are
        averaged into the reported mask. A test-time ensemble: twice the model's batch per
        frame (measured cost and accuracy: docs/tracker.md).
    stack_frames
        ROI mode: after SAM 2's step, every present object's window is cut again around the
        model's own centroid and averaged with the windows of its last ``stack_frames - 1``
        present frames, each cut around that frame's centroid (so the particle stays in place
        while the noise averages out, as a higher dose would give); SAM 2 segments that stacked
        window, from the same memory, and its mask is the reported one
        (:mod:`samem.track.stack`). Presence, the ROI window and, unless ``stack_memory``, the
        memory follow the single frame. A second model pass per object. 1 switches it off.
    stack_memory
        With ``stack_frames`` > 1, SAM 2's memory of the frame is encoded from the stacked
        window and its mask instead of the single frame's.
    search_zoom
        ROI mode: every frame an object is absent, SAM 2 also looks, from its memory, at a
        window ``search_zoom`` times wider around where its window waits (downsampled to the
        model input). When that look finds it with the confidence a particle near the edge
        needs to come back (object-present probability >= ``reappear_score`` and predicted
        IoU >= ``reappear_iou``), and not on another tracked object, the waiting window moves
        there, so the next frame can find it again. It reports nothing and writes no memory.
        1 switches it off.
    mask_threshold
        Probability a pixel of the reported (smoothed) mask must exceed; SAM 2's own rule is
        0.5 (logit 0). A model that under-segments faint rims is better read lower. Presence,
        the ROI window and SAM 2's memory still follow the model's own mask at 0.5.
    refine_band_px
        Boundary refinement of the reported mask (:mod:`samem.track.refine`): within this many
        px of its boundary (either side) a pixel is in when the frame, blurred by
        ``refine_sigma_px``, is on the particle's side of ``I_core + refine_level (I_ring -
        I_core)``, the medians of a layer from ``band`` to ``2 band`` px inside the mask and of
        a ring as far outside it; the interior deeper than the band stays, the parts touching
        it are kept, holes filled. Applied after smoothing and ``mask_to_centroid``, to the
        reported mask only: SAM 2's memory, presence and the ROI window keep the model's own
        mask, and the ``"intensity"``/``"matched"`` position is unchanged (with ``"mask"`` it
        is the refined mask's). 0 switches it off (the default: it follows the visible edge of
        real particles, 5 lifts real-tile IoU from 0.81 to 0.93, but costs synthetic IoU;
        docs/real_data.md).
    refine_sigma_px
        Gaussian blur (px) of the frame before the comparison; 0: none.
    refine_level
        Where the edge lies between the core's intensity (0) and the ring's (1).
    refine_min_contrast
        The mask is refined only where its edge contrast, ``|I_ring - I_core|`` over the ring's
        robust noise (1.4826 MAD of the frame as the tracker saw it, before ``refine_sigma_px``),
        measured per particle and frame, reaches this; 0: everywhere.
    denoise
        Gaussian smoothing of each frame before it is normalised
        (:func:`samem.track.preprocess.denoise`), sigma = ``denoise`` x the median prompt-box
        side (longest side, px) of the tracked objects, so it scales with the particles
        (0.04: 2 px for 50 px particles): a noisy frame is normalised and seen as a cleaner
        one would be, for a slightly softer boundary. 0: off.
    verify
        Check every position against an independent detector and the particle's own motion
        (:mod:`samem.track.verify`): SAM 2's position is reported only where the frame's
        band-passed contrast confirms a particle inside the motion gate; otherwise the object
        is reported absent (a gap, never a wrong position) and the frame is kept out of its
        memory; a detector peak inside the gate, on ``verify_frames`` consecutive frames
        without a confirmed position, prompts the object again on the next frame.
    verify_sigmas
        Motion gate: this many per-axis step spreads (the particle's own, measured on its
        verified frames, grown with ``sqrt`` of the frames since) plus its radius.
    verify_z
        Least detector *z* (band-passed contrast / its robust noise level) on the mean of the
        last ``verify_average`` frames that confirms a position ...
    verify_fraction
        ... and at least this fraction of the particle's typical *z* on its verified frames.
    verify_peak_z, verify_peak_fraction
        The same two thresholds for a detector peak that prompts an unconfirmed object again.
    verify_floor_z, verify_floor_fraction
        The least *z* a position needs on the current frame alone, and the fraction of the
        particle's typical *z* it needs there: the mean of the last frames still shows a fast
        particle where it was, so a track lagging behind it (or jumped onto noise beside it)
        passes ``verify_z`` unless the current frame is checked too.
    verify_return_z, verify_return_fraction
        The same two on the first frame after a gap (frames without a confirmed position):
        the gate has grown with the gap, and noise somewhere inside a larger gate more often
        looks like a faint particle.
    verify_max_gap
        Frames without a confirmed position after which the motion gate stops growing: a
        particle lost for long is found again near where it was lost (or prompted by the
        user), not on whatever noise the whole field holds.
    verify_rejoin_frames
        After ``verify_max_gap`` frames or more without a confirmed position, a position is
        reported only once confirmed on this many consecutive frames (1: at once).
    verify_average
        Frames (the current one and the previous ones) whose mean the detector filters.
    verify_frames
        Consecutive frames with a detector peak (each within one frame's gate of the last)
        but no confirmed position before the object is prompted again on that peak.
    verify_step
        Prior per-axis step spread (px per frame) as a fraction of the prompt-box side, until
        the particle's own steps are measured.
    low_percentile, high_percentile
        Intensity normalisation (:func:`samem.track.preprocess.normalize_frame`); from the
        model config's ``preprocess:`` section so tracking matches training.
    """

    mode: str = "roi"
    crop_size_px: int | None = None
    context: float = 3.0
    velocity_gain: float = 0.0
    max_cond_frames: int = 4
    clear_memory_on_prompt: bool = True
    memory_dtype: str = "bfloat16"
    num_threads: int | None = None
    cuda_bf16: bool = True
    cpu_bf16: bool = False
    batch_memories: bool = True
    window_peak: bool = True
    reappear_score: float = 0.9
    reappear_iou: float = 0.65
    reappear_frames: int = 1
    reappear_edge: float = 1.0
    lost_iou: float = 0.4
    lost_frames: int = 3
    smooth_frames: int = 5
    centroid: str = "matched"
    centroid_ring: float = RING  # the one default lives in samem.track.centroid
    matched_rate: float = 0.05
    matched_half: float = 0.45
    mask_to_centroid: bool = True
    edge_centre: bool = True
    mirror: bool = False
    stack_frames: int = 1
    stack_memory: bool = False
    search_zoom: float = 1.0
    mask_threshold: float = 0.5
    refine_band_px: float = 0.0
    refine_sigma_px: float = 5.0
    refine_level: float = 0.3
    refine_min_contrast: float = 0.0
    denoise: float = 0.04
    verify: bool = True
    verify_sigmas: float = 4.0
    verify_z: float = 2.5
    verify_fraction: float = 0.4
    verify_peak_z: float = 4.0
    verify_peak_fraction: float = 0.5
    verify_average: int = 3
    verify_frames: int = 2
    verify_floor_z: float = 1.5
    verify_floor_fraction: float = 0.2
    verify_return_z: float = 2.5
    verify_return_fraction: float = 0.5
    verify_max_gap: int = 16
    verify_rejoin_frames: int = 3
    verify_step: float = 0.25
    low_percentile: float = 0.5
    high_percentile: float = 99.5

    def __post_init__(self):
        if self.mode not in MODES:
            raise SamemError(f"tracker mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.crop_size_px is not None and self.crop_size_px < 16:
            raise SamemError(f"crop_size_px {self.crop_size_px} is too small (at least 16 px)")
        if self.context <= 0:
            raise SamemError(f"context {self.context} must be positive")
        if self.max_cond_frames < 1:
            raise SamemError("max_cond_frames must be at least 1")
        if self.memory_dtype not in ("bfloat16", "float32"):
            raise SamemError(f"memory_dtype {self.memory_dtype!r} is not 'bfloat16' or 'float32'")
        if self.num_threads is not None and self.num_threads < 1:
            raise SamemError("num_threads must be at least 1")
        if not 0.5 <= self.reappear_score < 1:
            raise SamemError(f"reappear_score {self.reappear_score} must be in [0.5, 1)")
        if not 0 <= self.reappear_iou < 1:
            raise SamemError(f"reappear_iou {self.reappear_iou} must be in [0, 1)")
        if not 1 <= self.reappear_frames <= 64:
            raise SamemError(f"reappear_frames {self.reappear_frames} must be from 1 to 64")
        if self.reappear_edge < 0:
            raise SamemError(f"reappear_edge {self.reappear_edge} must not be negative")
        if not 0 <= self.lost_iou < 1:
            raise SamemError(f"lost_iou {self.lost_iou} must be in [0, 1)")
        if not 1 <= self.lost_frames <= 64:
            raise SamemError(f"lost_frames {self.lost_frames} must be from 1 to 64")
        if not 1 <= self.smooth_frames <= 64:
            raise SamemError(f"smooth_frames {self.smooth_frames} must be from 1 to 64")
        if not 1 <= self.stack_frames <= 64:
            raise SamemError(f"stack_frames {self.stack_frames} must be from 1 to 64")
        if self.stack_frames > 1 and (self.mode != "roi" or self.mirror):
            raise SamemError("stack_frames > 1 needs mode roi and mirror false")
        if not 1 <= self.search_zoom <= 8:
            raise SamemError(f"search_zoom {self.search_zoom} must be from 1 to 8")
        if self.search_zoom > 1 and self.mode != "roi":
            raise SamemError("search_zoom > 1 needs mode roi")
        if self.centroid not in CENTROIDS:
            raise SamemError(f"centroid {self.centroid!r} is not one of {', '.join(CENTROIDS)}")
        if not 0.05 <= self.centroid_ring <= 5:
            raise SamemError(f"centroid_ring {self.centroid_ring} must be from 0.05 to 5 (of the box side)")
        if not 0 < self.matched_rate <= 1:
            raise SamemError(f"matched_rate {self.matched_rate} must be in (0, 1]")
        if not 0.2 <= self.matched_half <= 2:
            raise SamemError(f"matched_half {self.matched_half} must be from 0.2 to 2 (of the box side)")
        if not 0.05 <= self.mask_threshold <= 0.95:
            raise SamemError(f"mask_threshold {self.mask_threshold} must be from 0.05 to 0.95")
        if not 0 <= self.refine_band_px <= 32:
            raise SamemError(f"refine_band_px {self.refine_band_px} must be from 0 to 32 (px)")
        if not 0 <= self.refine_sigma_px <= 16:
            raise SamemError(f"refine_sigma_px {self.refine_sigma_px} must be from 0 to 16 (px)")
        if not 0 <= self.refine_level <= 1:
            raise SamemError(f"refine_level {self.refine_level} must be from 0 to 1")
        if not 0 <= self.refine_min_contrast <= 1000:
            raise SamemError(f"refine_min_contrast {self.refine_min_contrast} must be from 0 to 1000")
        if not 0 <= self.denoise <= 0.5:
            raise SamemError(f"denoise {self.denoise} must be from 0 to 0.5 (fraction of the box side)")
        if not 1 <= self.verify_sigmas <= 20:
            raise SamemError(f"verify_sigmas {self.verify_sigmas} must be from 1 to 20")
        if not 0 <= self.verify_z <= 50:
            raise SamemError(f"verify_z {self.verify_z} must be from 0 to 50")
        if not 0 <= self.verify_fraction <= 1:
            raise SamemError(f"verify_fraction {self.verify_fraction} must be from 0 to 1")
        if not 0 <= self.verify_peak_z <= 50:
            raise SamemError(f"verify_peak_z {self.verify_peak_z} must be from 0 to 50")
        if not 0 <= self.verify_peak_fraction <= 1:
            raise SamemError(f"verify_peak_fraction {self.verify_peak_fraction} must be from 0 to 1")
        if not 0 <= self.verify_floor_z <= 50:
            raise SamemError(f"verify_floor_z {self.verify_floor_z} must be from 0 to 50")
        if not 0 <= self.verify_floor_fraction <= 1:
            raise SamemError(f"verify_floor_fraction {self.verify_floor_fraction} must be from 0 to 1")
        if not 0 <= self.verify_return_z <= 50:
            raise SamemError(f"verify_return_z {self.verify_return_z} must be from 0 to 50")
        if not 0 <= self.verify_return_fraction <= 1:
            raise SamemError(f"verify_return_fraction {self.verify_return_fraction} must be from 0 to 1")
        if not 1 <= self.verify_max_gap <= 1_000_000:
            raise SamemError(f"verify_max_gap {self.verify_max_gap} must be from 1 to 1000000 frames")
        if not 1 <= self.verify_rejoin_frames <= 64:
            raise SamemError(f"verify_rejoin_frames {self.verify_rejoin_frames} must be from 1 to 64")
        if not 1 <= self.verify_average <= 16:
            raise SamemError(f"verify_average {self.verify_average} must be from 1 to 16")
        if not 1 <= self.verify_frames <= 64:
            raise SamemError(f"verify_frames {self.verify_frames} must be from 1 to 64")
        if not 0.01 <= self.verify_step <= 5:
            raise SamemError(f"verify_step {self.verify_step} must be from 0.01 to 5 (of the box side)")
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise SamemError("need 0 <= low_percentile < high_percentile <= 100")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, **overrides: Any) -> TrackerOptions:
        """Options from a model config's ``tracker``/``preprocess`` sections plus overrides."""
        config = config or {}
        values = {**dict(config.get("tracker") or {}), **dict(config.get("preprocess") or {})}
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SamemError(f"unknown tracker options {unknown}; known: {sorted(known)}")
        hints = typing.get_type_hints(cls)
        for name, value in values.items():
            ok, _, kind = convert(hints[name], value)
            if not ok:
                raise SamemError(f"tracker option {name} must be {kind}, got {value!r}")
        return replace(cls(), **values)


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["name=value", ...]`` (values read by :func:`samem.config.parse_overrides`, e.g.
    ``smooth_frames=5``) as a checked mapping.

    Raises
    ------
    SamemError
        A malformed item, an unknown option name or a value the option refuses.
    """
    out = parse_overrides(items, "tracker option", "smooth_frames=5")
    TrackerOptions.from_config(None, **out)
    return out
