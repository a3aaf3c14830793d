"""Act on the closed-loop advice ``samem serve`` publishes on the ``feedback`` topic.

One message per processed frame, ``{"seq": 41, "snr": 0.62, "events": [...]}``, plus messages
with ``"seq": null`` announcing rejected input. Event kinds:

- ``recentre``: a particle nears the border; move the field of view by (dx_nm, dy_nm)
  (x to the right, y down) to bring it to the centre.
- ``object_lost`` / ``object_found``: a particle disappeared or came back.
- ``falling_behind``: frames queue up or are dropped; ``suggested_fps`` is a rate the service
  can keep up with.
- ``message_rejected``: malformed input (``reason``, running ``count``).

Here the "microscope" only prints what it would do. Needs only pyzmq.

    python examples/consume_feedback.py --address tcp://127.0.0.1:5556 [--count N]
"""

import argparse
import json

import zmq


def act(event: dict) -> str:
    kind = event["kind"]
    if kind == "recentre":
        who = f"recentre on particle {event['particle']}"
        if event["dx_nm"] is None:
            return f"{who}: shift the view by ({event['dx_px']:.0f}, {event['dy_px']:.0f}) px"
        return f"{who}: move the stage by ({event['dx_nm']:.1f}, {event['dy_nm']:.1f}) nm"
    if kind == "object_lost":
        return f"particle {event['particle']} lost"
    if kind == "object_found":
        return f"particle {event['particle']} found again"
    if kind == "falling_behind":
        fps = event["suggested_fps"]
        return f"analysis lags {event['lag_frames']} frames, {event['dropped_frames']} dropped: " + (
            f"lower the frame rate to {fps:.1f} frames/s" if fps else "lower the frame rate"
        )
    if kind == "message_rejected":
        return f"the service rejected input ({event['reason']}, {event['count']} so far): {event['detail']}"
    return f"unknown advice {event}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="tcp://127.0.0.1:5556", help="samem serve's PUB address")
    p.add_argument("--count", type=int, default=0, help="stop after this many events (0: never)")
    p.add_argument(
        "--timeout-s", type=float, default=0, help="give up after this long without a message (0: never)"
    )
    p.add_argument("--snr", action="store_true", help="also print every frame's SNR estimate")
    args = p.parse_args()
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"feedback")
    sock.connect(args.address)
    seen = 0
    while args.count == 0 or seen < args.count:
        if args.timeout_s and not sock.poll(int(args.timeout_s * 1000)):
            raise SystemExit(f"no feedback message within {args.timeout_s} s")
        _, body = sock.recv_multipart()
        msg = json.loads(body)
        if args.snr and msg["snr"] is not None:
            print(f"frame {msg['seq']}: SNR {msg['snr']:.2f}", flush=True)
        for event in msg["events"]:
            print(act(event), flush=True)
            seen += 1


if __name__ == "__main__":
    main()
