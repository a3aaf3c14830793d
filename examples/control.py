"""Send one control command to ``samem serve`` and print the JSON reply.

    python examples/control.py status
    python examples/control.py prompt '{"1": [40, 52, 60, 71], "2": [100, 20, 118, 37]}'
    python examples/control.py remove 2 3
    python examples/control.py reset
    python examples/control.py record stop        # or: record start (needs samem serve --record FILE)
    python examples/control.py shutdown

Needs only pyzmq; the commands are documented in docs/service.md.
"""

import argparse
import json

import zmq


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cmd", choices=["status", "prompt", "remove", "reset", "shutdown", "record"])
    p.add_argument(
        "args", nargs="*", help="prompt: a JSON object of boxes; remove: object ids; record: start or stop"
    )
    p.add_argument("--address", default="tcp://127.0.0.1:5557", help="samem serve's control address")
    p.add_argument("--timeout-s", type=float, default=10.0)
    args = p.parse_args()
    request = {"cmd": args.cmd}
    if args.cmd == "prompt":
        request["boxes"] = json.loads(" ".join(args.args))
    elif args.cmd == "remove":
        request["ids"] = [int(i) for i in args.args]
    elif args.cmd == "record":
        request["action"] = args.args[0] if args.args else ""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(args.timeout_s * 1000))
    sock.connect(args.address)
    sock.send_json(request)
    try:
        reply = sock.recv_json()
    except zmq.Again:
        raise SystemExit(f"no reply from {args.address} within {args.timeout_s} s") from None
    print(json.dumps(reply, indent=1))
    raise SystemExit(0 if reply.get("ok") else 1)


if __name__ == "__main__":
    main()
