"""Limits of the live service under hostile or careless clients (issue 23)."""

from __future__ import annotations

import time

import numpy as np
from helpers import SLOW_SHAPE as SHAPE
from helpers import Running, SlowTracker, serve_settings


def _boxes(ids):
    return {str(i): [1, 1, 9, 9] for i in ids}


def test_too_many_objects_refused_and_a_full_legal_prompt_drops_frames_not_stalls():
    """Issue 23 (2): 183 boxes took 3 s per frame and a reset 7.8 s; now the count is capped and
    the largest legal prompt makes the service drop frames while control stays responsive."""
    settings = serve_settings(
        **{
            "prompts.max_per_prompt": 16,
            "prompts.max_objects": 16,
            "ingest.queue_frames": 3,
            "stats.every_frames": 10_000,
        }
    )
    run = Running(settings, lambda: SlowTracker(per_object_s=0.01))  # 16 objects: 0.16 s per frame
    frame = np.zeros(SHAPE, np.uint8)
    try:
        with run.sender(queue_frames=1000) as tx:
            tx.start(SHAPE, "uint8", 1.0, 0.05)
            tx.send(frame, seq=0)
            run.collect(lambda t, p: t == "frame" and p["seq"] == 0)
            t0 = time.monotonic()
            big = run.command({"cmd": "prompt", "boxes": _boxes(range(1, 201))})
            assert time.monotonic() - t0 < 1.0  # refused at once, not after the processing thread
            assert not big["ok"] and "200 boxes" in big["error"] and "max_per_prompt" in big["error"]
            assert run.command({"cmd": "prompt", "boxes": _boxes(range(1, 17))})["ok"]
            over = run.command({"cmd": "prompt", "boxes": _boxes([17])})
            assert not over["ok"] and "max_objects" in over["error"]
            for seq in range(1, 61):  # as fast as possible: far more than 6 frames/s
                tx.send(frame, seq=seq)
            time.sleep(0.5)
            t0 = time.monotonic()
            status = run.command({"cmd": "status"})
            assert time.monotonic() - t0 < 0.5 and status["objects"] == list(range(1, 17))
            t0 = time.monotonic()
            assert run.command({"cmd": "reset"})["ok"]
            assert time.monotonic() - t0 < 2.0  # one frame's work at most, not seconds per object
            tx.end()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                status = run.command({"cmd": "status"})
                if status["frames_processed"] + status["frames_dropped"] == 61 and status["series"] is None:
                    break
                time.sleep(0.1)
    finally:
        run.close()
    assert status["frames_received"] == 61
    assert status["frames_dropped"] > 0
    assert status["frames_processed"] + status["frames_dropped"] == 61
    assert run.service.queue.high_water <= 3


def test_receive_keeps_two_parts_and_counts_the_whole_message():
    """Issue 23 (3): the receiver keeps at most two parts and totals every part's bytes."""
    import zmq

    from samem.stream.ingest import receive

    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    try:
        pull.bind("inproc://parts")
        push.connect("inproc://parts")
        push.send_multipart([b"{}"] + [b"x" * 1000] * 50)
        parts, n, total = receive(pull)
        assert len(parts) == 2 and n == 51 and total == 2 + 50 * 1000
    finally:
        pull.close(0)
        push.close(0)
        ctx.term()


def test_many_part_message_and_oversized_part_are_refused_and_counted():
    """Issue 23 (3): a message of many parts, each under the cap, is one `parts` rejection that
    names its size; a part over the per-part cap (ZeroMQ's MAXMSGSIZE) drops the connection
    before it is buffered; the service keeps serving."""
    import zmq

    from samem.stream.service import part_size_cap

    cap = 2**20
    settings = serve_settings(**{"ingest.max_frame_bytes": cap, "ingest.policy": "block"})
    assert part_size_cap(settings["ingest"]) == 2 * cap  # hard_limit_factor x the largest legal part
    run = Running(settings, lambda: SlowTracker(per_object_s=0.0))
    frame = np.zeros(SHAPE, np.uint8)
    try:
        push = run.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(run.endpoints["ingest"])
        part = b"\0" * (cap - 100)
        push.send_multipart([b'{"type": "end"}'] + [part] * 30)  # 30 MiB in 31 parts
        msgs = run.collect(
            lambda t, p: t == "feedback" and any(e.get("reason") == "parts" for e in p["events"])
        )
        (event,) = [e for e in msgs[-1][1]["events"] if e.get("reason") == "parts"]
        assert f"got 31 ({15 + 30 * (cap - 100)} bytes in all)" in event["detail"]
        push.send_multipart([b'{"type": "end"}', b"\0" * (2 * cap + 1)])  # over ZeroMQ's part cap
        push.close(0)
        with run.sender() as tx:  # the service still serves (a fresh connection)
            tx.start(SHAPE, "uint8", 1.0, 0.05)
            tx.send(frame, seq=0)
            run.collect(lambda t, p: t == "frame" and p["seq"] == 0)
        status = run.command({"cmd": "status"})
    finally:
        run.close()
    assert status["rejected_by_reason"] == {"parts": 1}  # the oversized part never reached the parser
    assert status["frames_processed"] == 1


def test_cli_boxes_file_over_the_limit_is_refused_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import json

    import samem.stream.service as service
    from samem.cli.main import main

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the boxes file was checked")

    monkeypatch.setattr(service, "model_tracker_factory", no_model)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"frame": 0, "boxes": _boxes(range(1, 41))}))
    for args in (["serve", "--boxes", str(boxes)], ["analyze", "x.h5", "--boxes", str(boxes), "--out", "o"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert (
            err.startswith("samem: error: the boxes file holds 40 boxes; at most 32")
            and len(err.splitlines()) == 1
        )
