"""Print the per-frame results that ``samem serve`` publishes on the ``frame`` topic.

Needs only pyzmq. Each message is JSON:
    {"seq": 41, "timestamp": 1712.3, "processing_ms": 38.2, "latency_ms": 51.0, "lag_frames": 0,
     "objects": [{"id": 1, "x": 101.3, "y": 57.9, "area": 212, "score": 0.97, "present": true}, ...]}
x, y are pixels (x = column), area is in pixels, latency is from arrival to publication.

    python examples/consume_frames.py --address tcp://127.0.0.1:5556 [--count N]
"""

import argparse
import json

import zmq


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="tcp://127.0.0.1:5556", help="samem serve's PUB address")
    p.add_argument("--count", type=int, default=0, help="stop after this many messages (0: never)")
    p.add_argument(
        "--timeout-s", type=float, default=0, help="give up after this long without a message (0: never)"
    )
    args = p.parse_args()
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"frame")
    sock.connect(args.address)
    seen = 0
    while args.count == 0 or seen < args.count:
        if args.timeout_s and not sock.poll(int(args.timeout_s * 1000)):
            raise SystemExit(f"no frame message within {args.timeout_s} s")
        topic, body = sock.recv_multipart()
        msg = json.loads(body)
        objects = " ".join(
            f"{o['id']}:({o['x']:.1f},{o['y']:.1f})" if o["present"] else f"{o['id']}:lost"
            for o in msg["objects"]
        )
        print(
            f"frame {msg['seq']}: {len(msg['objects'])} objects, {msg['latency_ms']:.0f} ms  {objects}",
            flush=True,
        )
        seen += 1


if __name__ == "__main__":
    main()
