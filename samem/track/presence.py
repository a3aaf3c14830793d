"""When an object is present: losing it and finding it again (``TrackerOptions`` presence rules).

SAM 2 calls an object present when its object score is above 0.5, frame by frame. On the
held-out thick videos that let a particle that had left the field of view, or sunk into the
noise, be "re-found" on noise blobs near where it was last seen on most later frames, and
let a track slide from a particle leaving the field onto the noise beside it. This rule asks
more, using only what SAM 2 computes anyway (the object score and the predicted IoU of the
chosen mask, SAM 2's own mask-quality estimate):

Finding again — an object reported absent on its previous frame comes back only when

1. its object-present probability reaches ``reappear_score`` (hysteresis; 0.5: SAM 2's rule),

and, if it was last seen near the edge of the field (its centre within ``reappear_edge``
prompt-box sizes of the border: it has probably left the field, and what the model then
finds there is noise),

2. the predicted IoU of its best mask reaches ``reappear_iou`` (masks drawn on noise blobs
   are predicted poor), and
3. both hold on ``reappear_frames`` consecutive frames (a particle stays, noise blobs come
   and go); the frames before the last are reported absent.

A particle that faded out in the middle of the field is most likely still there: a faint
one's predicted IoU stays low all the time, so conditions 2 and 3 would keep it lost for good.

Losing — a present object whose predicted IoU stays below ``lost_iou`` on ``lost_frames``
consecutive frames is reported absent on the last of them (and must then be found again).

The rule runs inside SAM 2's step as a gate on the object-score logits
(:func:`samem.track.core.track_step`), so mask gating, the object pointer and the memory
follow the decision it makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.special import logit

#: logit given to an object the rule holds absent although SAM 2's score alone would not
#: (probability just below 0.5, so that "score > 0.5" keeps meaning "present")
HELD_ABSENT_LOGIT = -1e-3


@dataclass(frozen=True)
class PresenceRule:
    """The presence rule (module docstring); defaults leave SAM 2's decision unchanged.

    Parameters
    ----------
    reappear_score
        Object-present probability an absent object needs (0.5-1).
    reappear_iou
        Predicted IoU an absent object's best mask needs (0-1; 0: no condition).
    reappear_frames
        Consecutive frames on which both must hold (>= 1).
    lost_iou
        A present object is lost once its predicted IoU has stayed below this (0: never) ...
    lost_frames
        ... on this many consecutive frames (>= 1).
    reappear_edge
        Conditions 2 and 3 apply to objects last seen with their centre within this many
        prompt-box sizes of the frame border (:meth:`near_edge`).
    """

    reappear_score: float = 0.5
    reappear_iou: float = 0.0
    reappear_frames: int = 1
    lost_iou: float = 0.0
    lost_frames: int = 1
    reappear_edge: float = 1.0

    @property
    def active(self) -> bool:
        """Whether the rule can change SAM 2's decision at all."""
        finding = self.reappear_score > 0.5 or self.reappear_iou > 0 or self.reappear_frames > 1
        return finding or self.lost_iou > 0

    def near_edge(self, centre: tuple[float, float], box_size: float, shape: tuple[int, int]) -> bool:
        """Whether an object last seen at ``centre`` (x, y; px) is near the border of a frame
        of ``shape`` (conditions 2 and 3 apply to it); ``box_size``: its prompt box's longest side."""
        h, w = shape
        cx, cy = centre
        return min(cx, cy, w - cx, h - cy) < self.reappear_edge * box_size

    def gate(
        self,
        absent: torch.Tensor,
        pending: torch.Tensor,
        weak: torch.Tensor,
        strict: torch.Tensor | None = None,
    ):
        """A score gate for :func:`samem.track.core.track_step` over a batch of ``B`` objects.

        Parameters
        ----------
        absent
            ``(B,)`` bool: reported absent on its previous frame.
        pending
            ``(B,)`` int: consecutive earlier frames on which the absent object already passed
            conditions 1 and 2.
        weak
            ``(B,)`` int: consecutive earlier frames on which the present object's predicted
            IoU was below ``lost_iou``.
        strict
            ``(B,)`` bool: conditions 2 and 3 apply to this object (it was last seen near the
            edge, :meth:`near_edge`); ``None``: to all.

        Returns
        -------
        gate : callable
            ``gate(logits (B, 1), ious (B, M)) -> logits``. After the call ``gate.passed``
            (absent objects that passed conditions 1 and 2) and ``gate.weak`` (objects whose
            predicted IoU is below ``lost_iou``) hold ``(B,)`` bool tensors.
        """
        shift = float(logit(self.reappear_score))

        def gate(scores: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
            dev = scores.device
            was_absent = absent.to(dev)[:, None]
            best_iou = ious.max(dim=1, keepdim=True).values
            # finding again
            lowered = scores - shift
            lax = torch.zeros_like(was_absent) if strict is None else ~strict.to(dev)[:, None]
            passed = was_absent & (lowered > 0) & (lax | (best_iou >= self.reappear_iou))
            confirmed = passed & (lax | (pending.to(dev)[:, None] + 1 >= self.reappear_frames))
            again = torch.where(confirmed, lowered, lowered.clamp(max=HELD_ABSENT_LOGIT))
            # losing
            is_weak = ~was_absent & (best_iou < self.lost_iou)
            lost = is_weak & (weak.to(dev)[:, None] + 1 >= self.lost_frames)
            kept = torch.where(lost, scores.clamp(max=HELD_ABSENT_LOGIT), scores)
            gate.passed, gate.weak = passed[:, 0].cpu(), is_weak[:, 0].cpu()
            return torch.where(was_absent, again, kept)

        gate.passed = gate.weak = torch.zeros(absent.shape, dtype=torch.bool)
        return gate


def paired_gate(gate, n: int):
    """Score gate for a batch of ``n`` objects followed by their ``n`` mirrored views.

    Each pair's object-score logits and best predicted IoUs are averaged, ``gate`` (a
    :meth:`PresenceRule.gate` for the ``n`` objects, or ``None``: SAM 2's own rule) decides
    on the averages, and both views get that one decision.
    """

    def paired(scores: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        mean_score = (scores[:n] + scores[n:]) / 2
        best = ious.max(dim=1, keepdim=True).values
        decided = mean_score if gate is None else gate(mean_score, (best[:n] + best[n:]) / 2)
        return torch.cat([decided, decided])

    return paired
