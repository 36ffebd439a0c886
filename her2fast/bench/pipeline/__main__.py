"""The sides' processes of :func:`her2fast.bench.pipeline.main`: ``python -m her2fast.bench.pipeline --worker CONFIG``."""

from __future__ import annotations

import sys

from .processes import _worker

if __name__ == "__main__":  # the side processes of main()
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        raise SystemExit(_worker(sys.argv[1:]))
    raise SystemExit("usage: python -m her2fast.bench.pipeline --worker CONFIG (started by her2fast bench pipeline)")
