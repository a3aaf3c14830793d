"""Send frames to ``samem serve`` the way acquisition software would (here: a synthetic camera).

Uses samem's small client (numpy + pyzmq); the wire format is in docs/protocol.md if you
would rather write your own sender in another language.

    python examples/send_frames.py --address tcp://127.0.0.1:5555 --frames 200 --fps 20
"""

import argparse
import time

import numpy as np

from samem.stream.client import FrameSender


def camera(n_frames: int, size: int, rng: np.random.Generator):
    """Dark discs diffusing on a noisy bright background (uint16 counts)."""
    pos = rng.uniform(size * 0.2, size * 0.8, size=(3, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(n_frames):
        pos += rng.normal(0, 0.7, pos.shape)
        img = np.full((size, size), 1000.0)
        for x, y in pos:
            img[(xx - x) ** 2 + (yy - y) ** 2 <= 36] -= 300
        yield rng.poisson(img).astype(np.uint16)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", default="tcp://127.0.0.1:5555", help="samem serve's ingest address")
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--size", type=int, default=256, help="frame side, px")
    p.add_argument("--fps", type=float, default=20.0, help="frames per second")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    with FrameSender(args.address) as tx:
        tx.start(
            (args.size, args.size), "uint16", pixel_size_nm=0.5, frame_interval_s=1 / args.fps, series="demo"
        )
        t0 = time.monotonic()
        for seq, frame in enumerate(camera(args.frames, args.size, rng)):
            time.sleep(max(0.0, t0 + seq / args.fps - time.monotonic()))
            tx.send(frame, seq=seq)
        tx.end()
    print(f"sent {args.frames} frames")


if __name__ == "__main__":
    main()
