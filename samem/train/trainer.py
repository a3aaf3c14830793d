"""Full-model training of the SAM 2 architecture on LPTEM clips.

One step: draw ``clips_per_batch`` clips, cut them into ROI (or full-frame) inputs as the
tracker would (:mod:`samem.train.batches`), prompt every object with a jittered box on
frame 0, propagate through the clip with SAM 2's memory exactly as
:func:`samem.track.core.track_step` does in the tracker (gradients flow through the memory),
and minimise SAM 2's losses (:mod:`samem.train.losses`) summed over frames.

AdamW with a lower learning rate for the image encoder, linear warm-up then cosine decay,
gradient clipping, bf16 autocast on CUDA. The run folder holds ``last.pt`` (model,
optimiser, step; written atomically every ``checkpoint_every`` steps), ``metrics.jsonl``
(one JSON object per logged step) and the config. Restarting with the same ``run.out``
resumes from ``last.pt``; the data order is a function of the step, so a resumed run sees
the clips it would have seen. Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank draws
different clips and gradients are averaged across ranks.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from samem.errors import SamemError
from samem.model.checkpoint import load_weights, read_checkpoint
from samem.model.factory import build_model, resolve_config, resolve_device
from samem.track.core import encode_images, track_step
from samem.track.memory import ObjectMemory
from samem.train.batches import Batch, CropPolicy, clip_batch
from samem.train.config import OptimSection, TrainConfig
from samem.train.data import clip_source, real_val_source
from samem.train.losses import LossWeights, step_loss

log = logging.getLogger(__name__)

LOSS_KEYS = ("total", "mask", "dice", "iou", "score")


def clip_forward(
    model: torch.nn.Module, batch: Batch, device: torch.device, weights: LossWeights | None = None
) -> tuple[dict, torch.Tensor]:
    """Propagate a batch through its clip; return mean losses per frame and per-frame IoU ``(T, B)``."""
    weights = weights or LossWeights()
    n_frames, n_obj = batch.targets.shape[:2]
    memories = [
        ObjectMemory(
            model.num_maskmem, model.max_obj_ptrs_in_encoder, 1, model.memory_temporal_stride_for_eval
        )
        for _ in range(n_obj)
    ]
    totals = {k: 0.0 for k in LOSS_KEYS}
    ious = torch.zeros(n_frames, n_obj)
    boxes = batch.boxes.to(device)
    rows = batch.image_index.tolist()
    for t in range(n_frames):
        feats = encode_images(model, batch.images[t].to(device))
        if rows != list(range(feats.batch_size)):
            feats = feats.take(rows)
        out = track_step(model, feats, memories, t, boxes if t == 0 else None, memory_dtype=None)
        for i, memory in enumerate(memories):
            memory.add(t, out.entries[i], is_cond=t == 0)
            memory.prune(t + 1)
        target = batch.targets[t].to(device)
        losses = step_loss(out.high_res_logits, out.iou[:, None], out.object_score_logits, target, weights)
        for k in LOSS_KEYS:
            totals[k] = totals[k] + losses[k] / n_frames
        with torch.no_grad():
            pred = (out.high_res_logits[:, 0] > 0) & (out.object_score_logits[:, None, None] > 0)
            gt = target > 0.5
            inter = (pred & gt).flatten(1).sum(-1).float()
            union = (pred | gt).flatten(1).sum(-1).float()
            ious[t] = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).cpu()
    return totals, ious


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, optim: OptimSection) -> list[dict]:
    """AdamW groups: image encoder at ``encoder_lr``, the rest at ``lr``; no decay on 1-D params."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((name.startswith("image_encoder."), p.ndim <= 1), []).append(p)
    return [
        {
            "params": params,
            "lr": optim.encoder_lr if enc else optim.lr,
            "base_lr": optim.encoder_lr if enc else optim.lr,
            "weight_decay": 0.0 if flat else optim.weight_decay,
        }
        for (enc, flat), params in groups.items()
    ]


class Trainer:
    """Runs (or resumes) one training run described by a config from :mod:`samem.train.config`."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        run = cfg.run
        self.world, self.rank = 1, 0
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            self.world, self.rank = dist.get_world_size(), dist.get_rank()
        if run.num_threads:
            torch.set_num_threads(run.num_threads)
        device = run.device
        if device is None and self.world > 1 and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', self.rank))}"
        self.device = resolve_device(device)
        self.out = Path(run.out)
        self.model_config = resolve_config(cfg.model.config)
        torch.manual_seed(run.seed)
        self.model = build_model(self.model_config, device=self.device)
        self.weights = LossWeights(**cfg.loss)
        self.policy = CropPolicy(
            input_size=int(self.model.image_size),
            **cfg.crop,
            **{
                k: v
                for k, v in (self.model_config.get("preprocess") or {}).items()
                if k in ("low_percentile", "high_percentile", "denoise")
            },
        )
        self.optimizer = torch.optim.AdamW(param_groups(self.model, cfg.optim), betas=tuple(cfg.optim.betas))
        self.step = 0
        resumed = self._resume_or_init()
        self.ema = None
        if cfg.optim.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
            if resumed is not None and "ema" in resumed:
                load_weights(self.ema, resumed["ema"], str(self.out / "last.pt"))
        self.train_clip = clip_source(cfg.data)
        # validation: the synthetic (or video) stream alone, and the held-out real tiles apart
        self.val_clip = clip_source(cfg.data.replace(tiles_fraction=0.0), seed=cfg.data.val_seed)
        self.val_real = real_val_source(cfg.data)

    # ------------------------------------------------------------------ state
    def _resume_or_init(self) -> dict | None:
        """Load ``last.pt`` if the run exists (returned) or the ``init`` weights."""
        last = self.out / "last.pt"
        if last.is_file():
            ckpt = read_checkpoint(last)
            load_weights(self.model, ckpt["model"], str(last))
            if "optimizer" in ckpt:
                self.optimizer.load_state_dict(ckpt["optimizer"])
                # the config, not the checkpoint, sets rates and decay: overrides act on resume
                fresh = param_groups(self.model, self.cfg.optim)
                for group, new in zip(self.optimizer.param_groups, fresh):
                    group["base_lr"], group["weight_decay"] = new["base_lr"], new["weight_decay"]
            self.step = int(ckpt.get("meta", {}).get("step", 0))
            log.info("resumed %s at step %d", last, self.step)
            return ckpt
        elif self.cfg.model.init:
            init = Path(self.cfg.model.init)
            load_weights(self.model, read_checkpoint(init)["model"], str(init))
            log.info("initialised from %s", init)
        return None

    def save(self, path: Path | None = None, with_optimizer: bool = True) -> Path:
        """Write a self-describing checkpoint atomically (``last.pt`` by default)."""
        path = path or self.out / "last.pt"
        meta = {
            "step": self.step,
            "train_config": self.cfg.to_dict(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        ckpt = {"model": self.model.state_dict(), "config": self.model_config, "meta": meta}
        if self.ema is not None:
            ckpt["ema"] = self.ema.state_dict()
            meta["ema_decay"] = self.cfg.optim.ema_decay
        if with_optimizer:
            ckpt["optimizer"] = self.optimizer.state_dict()
        tmp = path.with_name(path.name + ".tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ steps
    def _autocast(self):
        if self.device.type == "cuda" and self.cfg.run.bf16:  # pragma: no cover - no GPU in CI
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batch(self, step: int, source=None, offset: int = 0, policy: CropPolicy | None = None) -> Batch:
        """The batch of ``step`` on this rank (deterministic)."""
        n = self.cfg.data.clips_per_batch
        first = (step * self.world + self.rank) * n + offset
        source = source or self.train_clip
        rng = np.random.default_rng((self.cfg.run.seed, step, self.rank, offset))
        return clip_batch([source(first + i) for i in range(n)], policy or self.policy, rng)

    def train_step(self) -> dict[str, float]:
        opt = self.cfg.optim
        factor = lr_factor(self.step, opt.warmup_steps, opt.steps, opt.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
        self.model.train()
        batch = self.batch(self.step)
        with self._autocast():
            losses, ious = clip_forward(self.model, batch, self.device, self.weights)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if self.world > 1:
            for p in self.model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), opt.grad_clip)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        out = {k: float(v.detach()) for k, v in losses.items()}
        out.update(track_iou=float(ious[1:].mean()), grad_norm=float(grad_norm), lr=opt.lr * factor)
        return out

    @torch.no_grad()
    def _update_ema(self) -> None:
        """Exponential moving average of the weights (decay ramps up over the first steps)."""
        if self.ema is None:
            return
        decay = min(self.cfg.optim.ema_decay, (1 + self.step) / (10 + self.step))
        ema, live = list(self.ema.parameters()), list(self.model.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)
        for b_ema, b in zip(self.ema.buffers(), self.model.buffers()):
            b_ema.copy_(b)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean IoU over the propagated frames of ``val_clips`` fixed held-out clips.

        With ``optim.ema_decay`` the averaged weights are scored too (``val_iou_ema``); with
        ``crop.vanish_prob`` > 0, ``val_absent`` is the fraction of frames on which the live model
        calls an object absent after its window has left it. ``val_iou`` never uses vanishing
        windows, so it stays comparable between runs with and without them. With
        ``data.tiles_val`` > 0, ``val_real_iou`` (and ``val_real_iou_ema``) is the mean IoU on
        all frames of ``val_clips`` clips cut from the held-out real tiles.
        """
        n, per = self.cfg.data.val_clips, self.cfg.data.clips_per_batch
        plain = dataclasses.replace(self.policy, vanish_prob=0.0)  # comparable across runs
        batches = [self.batch(0, self.val_clip, k, plain) for k in range(0, n, per)]  # rendered once
        models = {"": self.model} | ({"_ema": self.ema} if self.ema is not None else {})
        out = {}
        for suffix, model in models.items():
            model.eval()
            ious, totals = [], []
            for batch in batches:
                with self._autocast():
                    losses, iou = clip_forward(model, batch, self.device, self.weights)
                ious.append(iou[1:].flatten())
                totals.append(float(losses["total"]))
            out[f"val_iou{suffix}"] = float(torch.cat(ious).mean())
            out[f"val_loss{suffix}"] = float(np.mean(totals))
        if self.val_real is not None:
            real = [self.batch(0, self.val_real, k, plain) for k in range(0, n, per)]
            for suffix, model in models.items():
                ious = []
                for batch in real:
                    with self._autocast():
                        _, iou = clip_forward(model, batch, self.device, self.weights)
                    ious.append(iou.flatten())  # the prompted frame too: a still tile's segmentation
                out[f"val_real_iou{suffix}"] = float(torch.cat(ious).mean())
        if self.policy.vanish_prob > 0:
            out["val_absent"] = self._validate_absence(n, per)
        return out

    @torch.no_grad()
    def _validate_absence(self, n: int, per: int) -> float:
        """Fraction of frames, among those where the object has left its window, scored absent."""
        gone = dataclasses.replace(self.policy, vanish_prob=1.0)
        said, total = 0, 0
        self.model.eval()
        for k in range(0, n, per):
            batch = self.batch(0, self.val_clip, k, gone)
            absent = batch.targets.flatten(2).amax(-1) < 0.5  # (T, B)
            with self._autocast():
                _, iou = clip_forward(self.model, batch, self.device, self.weights)
            said += int((iou[absent] == 1.0).sum())  # empty truth: IoU 1 only for an empty prediction
            total += int(absent.sum())
        return said / total if total else float("nan")

    def fit(self, steps: int | None = None, progress: bool = True) -> dict[str, float]:
        """Train until ``optim.steps`` (or ``steps`` more steps), checkpointing and logging."""
        run = self.cfg.run
        end = self.cfg.optim.steps if steps is None else min(self.step + steps, self.cfg.optim.steps)
        main = self.rank == 0
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.yaml").write_text(yaml.safe_dump(self.cfg.to_dict(), sort_keys=False))
        metrics_file = self.out / "metrics.jsonl"
        bar = tqdm(
            total=end, initial=self.step, disable=not (progress and main), unit="step", dynamic_ncols=True
        )
        last: dict[str, float] = {}
        t0, since = time.perf_counter(), 0
        while self.step < end:
            last = self.train_step()
            if not math.isfinite(last["total"]):
                raise SamemError(
                    f"training diverged at step {self.step} (loss {last['total']}); lower optim.lr"
                )
            bar.update(1)
            bar.set_postfix(loss=f"{last['total']:.3f}", iou=f"{last['track_iou']:.3f}")
            record = None
            since += 1
            if self.step % run.log_every == 0 or self.step == end:
                record = {"step": self.step, "sec_per_step": (time.perf_counter() - t0) / since, **last}
                t0, since = time.perf_counter(), 0
            if run.val_every and (self.step % run.val_every == 0 or self.step == end):
                record = {**(record or {"step": self.step}), **self.validate()}
            if main and record is not None:
                with metrics_file.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
            if main and (self.step % run.checkpoint_every == 0 or self.step == end):
                self.save()
        bar.close()
        return last


def export_weights(checkpoint: str | Path, out: str | Path, ema: bool = True) -> Path:
    """Strip a training checkpoint to the shipped form ``{"model", "config", "meta"}`` (fp32 weights).

    The moving-average weights are exported when the run kept them (``optim.ema_decay``)
    and ``ema`` is true; ``meta["weights"]`` says which were taken.
    """
    ckpt = read_checkpoint(checkpoint)
    if "config" not in ckpt:
        raise SamemError(f"{checkpoint}: not a samem training checkpoint (no model config inside)")
    take_ema = ema and "ema" in ckpt
    meta = {**ckpt.get("meta", {}), "weights": "ema" if take_ema else "live"}
    slim = {"model": ckpt["ema"] if take_ema else ckpt["model"], "config": ckpt["config"], "meta": meta}
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(slim, tmp)
    os.replace(tmp, out)
    return out
