"""Collect ``bench_accuracy.py --seeds tuning`` runs into one table and one JSON file.

Tracker defaults are chosen on the tuning videos (seeds 2001 + 10 k, 2002 + 10 k, 2003 + 10 k),
never on the held-out ones that the README reports. The sweep behind the shipped
``smooth_frames`` default (2-vCPU machine)::

    for k in 1 3 5 9; do
        python bench/bench_accuracy.py --seeds tuning --videos 2 --jobs 2 --baseline none \\
            --tracker smooth_frames=$k --out bench/results/tuning_smooth$k
    done
    python bench/collect_tuning.py bench/results/tuning_smooth1 bench/results/tuning_smooth3 \
        bench/results/tuning_smooth5 bench/results/tuning_smooth9 \
        --out bench/records/tuning/tuning_smooth_frames.json

and behind ``reappear_score`` 0.9 (with ``smooth_frames`` 5; 0.9 is the ``tuning_smooth5`` run)::

    for r in 0.8 0.95; do
        python bench/bench_accuracy.py --seeds tuning --videos 2 --jobs 2 --baseline none \
            --tracker smooth_frames=5 --tracker reappear_score=$r --out bench/results/tuning_s5_r$r
    done
    python bench/collect_tuning.py bench/results/tuning_s5_r0.8 bench/results/tuning_smooth5 \
        bench/results/tuning_s5_r0.95 --out bench/records/tuning/tuning_reappear_score.json

and behind the presence rule's ``reappear_iou`` 0.6 (``reappear_frames`` 1, ``lost_iou`` off;
run ``tune_i0f1`` = the defaults before it, ``reappear_iou=0``)::

    run() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --videos 2 --jobs 1 \
        --threads 1 --baseline none "$@" --out bench/results/tune_$name; }
    run i0f1 --tracker reappear_iou=0
    for i in 50 55 60 65 70; do run i${i}f1 --tracker reappear_iou=0.$i; done
    run i0f3 --tracker reappear_iou=0 --tracker reappear_frames=3
    run i60f2 --tracker reappear_frames=2
    run i65f2 --tracker reappear_iou=0.65 --tracker reappear_frames=2
    run i60f1_l35 --tracker lost_iou=0.35
    run i60f1_l45 --tracker lost_iou=0.45
    run i60f2_l40 --tracker reappear_frames=2 --tracker lost_iou=0.4
    python bench/collect_tuning.py bench/results/tune_i0f1 bench/results/tune_i50f1 \
        bench/results/tune_i55f1 bench/results/tune_i60f1 bench/results/tune_i65f1 \
        bench/results/tune_i70f1 bench/results/tune_i0f3 bench/results/tune_i60f2 \
        bench/results/tune_i65f2 bench/results/tune_i60f1_l35 bench/results/tune_i60f1_l45 \
        bench/results/tune_i60f2_l40 --out bench/records/tuning/tuning_presence.json

and behind ``reappear_edge`` 1.0 (``reappear_iou`` 0.6; 4 tuning videos per preset)::

    run4() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --videos 4 --jobs 2 \
        --threads 2 --baseline none "$@" --out bench/results/tune4_$name; }
    run4 i0 --tracker reappear_iou=0
    for e in 1000 0.5 1.0 2.0; do run4 e$e --tracker reappear_edge=$e; done
    python bench/collect_tuning.py bench/results/tune4_i0 bench/results/tune4_all \
        bench/results/tune4_e05 bench/results/tune4_e1 bench/results/tune4_e2 \
        --out bench/records/tuning/tuning_presence_edge.json

(the folders of the edge runs were named ``all``, ``e05``, ``e1``, ``e2``), checked on 12 thick
tuning videos (seeds 2003 + 10 k, k = 0..11)::

    run12() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --presets thick \
        --videos 12 --jobs 2 --threads 2 --baseline none "$@" --out bench/results/tune12_$name; }
    run12 i0 --tracker reappear_iou=0; run12 all --tracker reappear_edge=1000
    run12 e1 --tracker reappear_edge=1.0
    for r in 0.8 0.7; do run12 r$r --tracker reappear_score=$r; done
    python bench/collect_tuning.py bench/results/tune12_i0 bench/results/tune12_all \
        bench/results/tune12_e1 bench/results/tune12_r0.8 bench/results/tune12_r0.7 \
        --out bench/records/tuning/tuning_presence_thick12.json

and behind ``denoise`` 0.04, ``centroid`` intensity and ``reappear_iou`` 0.65 (``mask_threshold``
kept at 0.5). Two interim forms of the smoothing were swept first and are in the JSON under
the option name they had then, ``denoise_sigma``: runs ``tune_dn*`` smoothed the resized
model input after normalisation (sigma in model-input px; removed: no effect), runs
``tune_fdn*`` smoothed the frame before normalisation with sigma in frame px (what
``denoise`` does, with sigma = 0.04 x the median box side, 46-62 px on these videos)::

    run() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --videos 2 --jobs 1 \
        --threads 1 --baseline none "$@" --out bench/results/tune_$name; }
    run dn0 --tracker denoise_sigma=0; run dn1 --tracker denoise_sigma=1      # interim, input px
    for t in 0.2 0.3 0.4; do run thr$t --tracker mask_threshold=$t; done
    for s in 1 2 3 4; do run fdn$s --tracker denoise_sigma=$s; done          # interim, frame px
    run fdn2_thr0.4 --tracker denoise_sigma=2 --tracker mask_threshold=0.4
    run d04 --tracker denoise=0.04; run ci --tracker centroid=intensity
    run d04_ci --tracker denoise=0.04 --tracker centroid=intensity
    run4() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --videos 4 --jobs 1 \
        --threads 1 --baseline none "$@" --out bench/results/tune4_$name; }
    run4 d04_ci --tracker denoise=0.04 --tracker centroid=intensity
    run4 d04_ci_i65 --tracker denoise=0.04 --tracker centroid=intensity --tracker reappear_iou=0.65
    # then, with the new defaults set, 4 more medium and thick tuning videos (k = 4..7)
    run4b() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --presets medium \
        thick --skip 4 --videos 4 --jobs 2 --threads 2 --baseline none "$@" \
        --out bench/results/tune4b_$name; }
    run4b new
    run4b old --tracker reappear_iou=0.6 --tracker denoise=0 --tracker centroid=mask
    run4b new_i60 --tracker reappear_iou=0.6
    python bench/collect_tuning.py bench/results/tune_dn0 bench/results/tune_dn1 \
        bench/results/tune_thr0.2 bench/results/tune_thr0.3 bench/results/tune_thr0.4 \
        bench/results/tune_fdn1 bench/results/tune_fdn2 bench/results/tune_fdn3 \
        bench/results/tune_fdn4 bench/results/tune_fdn2_thr0.4 bench/results/tune_d04 \
        bench/results/tune_ci bench/results/tune_d04_ci bench/results/tune4_d04_ci \
        bench/results/tune4_d04_ci_i65 bench/results/tune4b_old bench/results/tune4b_new_i60 \
        bench/results/tune4b_new --out bench/records/tuning/tuning_denoise_centroid.json

(the runs before ``run4b`` came before the new defaults were set, so the options they do not
name were the previous defaults: ``reappear_iou`` 0.6, ``denoise`` 0, ``centroid`` mask; the
``dn0`` run reproduced the previous defaults' 0.856 / 0.834 / 0.739 exactly. The JSON rows
of the interim and ``tune4b`` runs carry a ``variant`` note.)

and behind leaving ``stack_frames`` and ``search_zoom`` off (tracker options; rows carry
``video_seeds``; the defaults on k = 0..3 are ``tuning_mask_to_centroid.json``'s ``ab_shift``)::

    run() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --baseline none \
        --jobs 2 --threads 2 "$@" --out /tmp/$name; }
    run tune_stack_frames_5 --videos 4 --tracker stack_frames=5
    run tune_stack_frames_5_search_zoom_2_0 --videos 4 --tracker stack_frames=5 --tracker search_zoom=2.0
    run tune_sz2 --videos 4 --tracker search_zoom=2.0
    run tune_def_k4 --videos 8 --skip 4 --presets medium thick
    run tune_sz2_k4 --videos 8 --skip 4 --presets medium thick --tracker search_zoom=2.0
    python bench/collect_tuning.py /tmp/tune_stack_frames_5 /tmp/tune_stack_frames_5_search_zoom_2_0 \
        /tmp/tune_sz2 /tmp/tune_def_k4 /tmp/tune_sz2_k4 --out bench/records/tuning/tuning_stack_search.json

and behind keeping ``context`` 3.0 (the ROI window side in prompt-box sides; same ``run``)::

    for c in 2.5 3.5 4.0; do run tune_ctx$c --videos 4 --tracker context=$c; done
    run tune_ctx3.5_k4 --videos 8 --skip 4 --presets medium thick --tracker context=3.5
    python bench/collect_tuning.py /tmp/tune_ctx2.5 /tmp/tune_ctx3.5 /tmp/tune_ctx4.0 \
        /tmp/tune_ctx3.5_k4 --out bench/records/tuning/tuning_context.json

and behind ``centroid`` matched (the matched filter, ``matched_rate`` 0.05 and ``matched_half``
0.45 chosen offline by ``bench_centroid.py`` on the ``tune_base`` run; that run's rows show
options ``{}``: it ran while ``intensity`` was the default, which the recipe now has to name;
medium on k = 4..11 compares with the ``tune_def_k4`` row of ``tuning_stack_search.json``,
the same code path)::

    r() { name=$1; shift; python bench/bench_accuracy.py --seeds tuning --baseline none \
        --jobs 2 "$@" --out bench/results/$name; }
    r tune_base --videos 4 --tracker centroid=intensity
    r tune_matched --videos 4 --tracker centroid=matched
    r tune_matched_k4 --videos 8 --skip 4 --presets medium thick --tracker centroid=matched
    r tune_base_k4 --videos 8 --skip 4 --presets thick --tracker centroid=intensity
    python bench/collect_tuning.py bench/results/tune_base bench/results/tune_matched \
        bench/results/tune_base_k4 bench/results/tune_matched_k4 \
        --out bench/records/tuning/tuning_matched.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("iou_mean", "centroid_err_px", "d_rel_err", "present_when_gone", "id_switches")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="--out folders of bench_accuracy.py runs")
    ap.add_argument("--out", help="write the collected rows here (JSON)")
    args = ap.parse_args()
    rows = []
    for run in args.runs:
        payload = json.loads((Path(run) / "accuracy.json").read_text())
        for preset, methods in payload["results"].items():
            m = methods["samem"]
            rows.append(
                {
                    "run": Path(run).name,
                    "seeds": payload.get("seeds", "held-out"),
                    "tracker_options": payload.get("tracker_options", {}),
                    "preset": preset,
                    "video_seeds": [v.get("seed") for v in m["videos"]],
                    "iou_per_video": [v["iou_mean"] for v in m["videos"]],
                    **{k: m.get(k) for k in COLUMNS},
                }
            )
    print("| tracker options | seeds | preset | mean IoU (per video) | centroid (px) | D error ", end="")
    print("| present when gone |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        per_video = ", ".join(f"{v:.2f}" for v in r["iou_per_video"])
        print(
            f"| {r['tracker_options']} | {r['seeds']} | {r['preset']} | {r['iou_mean']:.3f} ({per_video}) "
            f"| {r['centroid_err_px']:.2f} | {r['d_rel_err']:.1%} | {r['present_when_gone']:.2f} |"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
