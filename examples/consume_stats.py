"""Print the statistics ``samem serve`` publishes on the ``stats`` topic.

Published every ``stats.every_frames`` frames (configs/serve.yaml) and once more, with
``"final": true``, when a series ends. The payload is the statistics summary (as stats.json):
units, per-particle fits (``D_nm2_s`` from the alpha = 1 fit, ``alpha``, uncertainties),
the ensemble fit, displacement moments and the non-Gaussian parameter. Needs only pyzmq.

    python examples/consume_stats.py --address tcp://127.0.0.1:5556 [--count N]
"""

import argparse
import json

import zmq


def fmt(value, spec=".1f"):
    return "n/a" if value is None else format(value, spec)


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
    sock.setsockopt(zmq.SUBSCRIBE, b"stats")
    sock.connect(args.address)
    seen = 0
    while args.count == 0 or seen < args.count:
        if args.timeout_s and not sock.poll(int(args.timeout_s * 1000)):
            raise SystemExit(f"no stats message within {args.timeout_s} s")
        _, body = sock.recv_multipart()
        s = json.loads(body)
        ens = s["ensemble"]
        kind = "final" if s.get("final") else "running"
        print(
            f"[{kind} @ frame {s['seq']}] {s['n_particles']} particles; ensemble D = {fmt(ens['D_nm2_s'])} "
            f"+- {fmt(ens['D_err_nm2_s'])} nm^2/s, alpha = {fmt(ens['alpha'], '.2f')}",
            flush=True,
        )
        for part in s["particles"]:
            print(
                f"   particle {part['particle']}: "
                f"D = {fmt(part['D_nm2_s'])} +- {fmt(part['D_err_nm2_s'])} nm^2/s, "
                f"alpha = {fmt(part['alpha'], '.2f')} ({part['n_present']} frames)",
                flush=True,
            )
        seen += 1


if __name__ == "__main__":
    main()
