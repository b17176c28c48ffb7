"""Summarise a py-spy raw (collapsed stacks) profile: the functions holding the GIL most.

py-spy record -p PID --gil -f raw -o prof.txt -d 10
uv run --group bench python -m bench.profile_summary prof.txt [SELF_N] [INCLUSIVE_N]
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def summarise(path: str, self_n: int = 25, inclusive_n: int = 40) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            line = line.rstrip()
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            n = int(count)
            total += n
            # "func (file.py:123)" -> "func (file.py)": one entry per function
            names = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
            own[names[-1]] += n
            for name in set(names):
                inclusive[name] += n
    out = [f"total samples {total}", "--- self"]
    out += [f"{100 * n / total:5.1f}% {name}" for name, n in own.most_common(self_n)]
    out.append("--- inclusive")
    out += [f"{100 * n / total:5.1f}% {name}" for name, n in inclusive.most_common(inclusive_n)]
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        raise SystemExit("usage: python -m bench.profile_summary PROFILE [SELF_N] [INCLUSIVE_N]")
    print(summarise(args[0], *(int(a) for a in args[1:3])))
