# ftfy parity: catlip's fix_text (`catlip text fix --lp`) against ftfy.fix_text
# (6.3.1, default config) on the seeded dirty corpus of ftfy_corpus.py.
"""Prints the agreement (count, percentage) and a histogram of the remaining
difference classes, one example each; exits 1 below --min-agreement, 77
(skipped) when ftfy cannot be imported.

    .venv/bin/python tools/python/ftfy_parity.py --catlip build/bin/catlip --count 100000

A difference's class is the list of repairs ftfy explains for that string
(ftfy.fix_and_explain), e.g. "encode:sloppy-windows-1251 decode:utf-8".
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def run_catlip(catlip: str, strings: list) -> list:
    data = b"".join(str(len(b)).encode() + b"\n" + b for b in (s.encode("utf-8") for s in strings))
    out = subprocess.run([catlip, "text", "fix", "--lp"], input=data, capture_output=True, check=True).stdout
    res, i = [], 0
    while i < len(out):
        j = out.index(b"\n", i)
        n = int(out[i:j])
        res.append(out[j + 1:j + 1 + n].decode("utf-8", "replace"))
        i = j + 1 + n
    if len(res) != len(strings):
        raise SystemExit(f"catlip text fix returned {len(res)} records for {len(strings)}")
    return res


def diff_class(ftfy, s: str) -> str:
    steps = []
    pos = 0
    # fix_text works line by line; explain each line as it does.
    while pos < len(s):
        end = s.find("\n", pos) + 1 or len(s)
        _, expl = ftfy.fix_and_explain(s[pos:end])
        steps += [f"{a}:{b}" for a, b in (expl or [])]
        pos = end
    seen = []
    for st in steps:
        if st not in seen:
            seen.append(st)
    return " ".join(seen) or "(no ftfy step)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catlip", required=True, help="the catlip binary")
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--min-agreement", type=float, default=99.9, help="percent")
    ap.add_argument("--show", type=int, default=20, help="difference classes to list")
    a = ap.parse_args()
    try:
        import ftfy
    except ImportError as e:
        print(f"SKIPPED: ftfy is not importable ({e})")
        return 77
    if ftfy.__version__ != "6.3.1":
        print(f"note: ftfy {ftfy.__version__}, the pinned version is 6.3.1")
    import ftfy_corpus

    caps = subprocess.run([a.catlip, "text", "captions", "3000", "--seed", str(a.seed)], capture_output=True,
                          check=True, text=True).stdout.splitlines()
    t0 = time.time()
    cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "ftfy_corpus.py"),
           "--count", str(a.count), "--seed", str(a.seed), "--captions", "/dev/stdin"]
    corpus = subprocess.run(cmd, input="\n".join(caps) + "\n", capture_output=True, check=True, text=True).stdout
    strings = [json.loads(line) for line in corpus.splitlines()]
    t1 = time.time()
    ours = run_catlip(a.catlip, strings)
    t2 = time.time()
    theirs = [ftfy.fix_text(s) for s in strings]
    t3 = time.time()
    diffs = collections.defaultdict(list)
    for s, o, t in zip(strings, ours, theirs):
        if o != t:
            diffs[diff_class(ftfy, s)].append((s, o, t))
    n = len(strings)
    agree = n - sum(len(v) for v in diffs.values())
    pct = 100.0 * agree / n if n else 100.0
    print(f"ftfy parity: {agree} / {n} strings byte-equal ({pct:.3f}%), "
          f"threshold {a.min_agreement}%; corpus {t1 - t0:.1f} s, catlip {t2 - t1:.2f} s, ftfy {t3 - t2:.1f} s")
    for cls, items in sorted(diffs.items(), key=lambda kv: -len(kv[1]))[:a.show]:
        s, o, t = items[0]
        print(f"  {len(items):6d}  {cls}\n          input  {s!r}\n          catlip {o!r}\n          ftfy   {t!r}")
    if len(diffs) > a.show:
        print(f"  ... {len(diffs) - a.show} more classes")
    return 0 if pct >= a.min_agreement else 1


if __name__ == "__main__":
    sys.exit(main())
