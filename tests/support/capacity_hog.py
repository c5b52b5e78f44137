"""A child process holding memory: allocates --gb GB, writes to every page so the
host really counts it, prints "ready <bytes>", then waits until stdin closes."""

from __future__ import annotations

import argparse
import sys

PAGE = 4096

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, required=True)
    size = int(parser.parse_args().gb * 2**30)
    block = bytearray(size)
    block[::PAGE] = b"\x01" * len(range(0, size, PAGE))
    print(f"ready {size}", flush=True)
    sys.stdin.read()
