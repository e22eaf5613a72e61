#!/usr/bin/env python3
"""Results of tools/gpu/check.sh: OUT/results.json and OUT/results.md.

Reads what the check's steps left in OUT: steps.tsv (status and seconds per
step), bench_train.json (`catlip bench train --json`), and the quickstart's
run dirs (quickstart/train/train_metrics.jsonl, quickstart/eval/eval.json,
logs/quickstart.log). Writes a table of metric, value, target, met/missed and
by how much where missed, and prints it. Standard library only (runs with
whichever Python holds torch on the machine).

  results.py --out DIR --mode gpu|dry-run --device cuda|cpu [--gpu NAME] [--cores N] [--python PATH]
"""
import argparse
import json
import math
import os
import platform
import re
import sys
import time

# The targets for a run on a lent H100/H200 (issue 19).
TARGET_VS_EAGER = 1.0     # catlip img/s / PyTorch eager img/s
TARGET_VS_COMPILE = 0.9   # catlip img/s / torch.compile img/s
TARGET_MFU = 0.40         # catlip bf16 MFU, ViT-B/16 training
TARGET_MAP = 0.8          # held-out mAP vs the drawn objects
TARGET_INPUT_WAIT = 0.05  # trainer's input-wait fraction, whole run


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_steps(out):
    steps = []
    try:
        with open(os.path.join(out, "steps.tsv")) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    steps.append({"step": parts[0], "status": parts[1], "seconds": float(parts[2]),
                                  "note": parts[3] if len(parts) > 3 else ""})
    except OSError:
        # no steps.tsv (the check never started): an empty step table
        pass
    return steps


def quickstart_figures(out):
    """Loss start/end, input wait, img/s from train_metrics.jsonl; mAP from eval.json."""
    q = {}
    rows = []
    try:
        with open(os.path.join(out, "quickstart", "train", "train_metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        # missing or cut short (a killed run): no training figures
        pass
    if rows:
        n = len(rows)
        k = max(1, n // 20)  # first and last 5% of the steps (at least one)
        q["steps"] = rows[-1]["step"]
        q["loss_first"] = rows[0]["loss"]
        q["loss_last"] = rows[-1]["loss"]
        q["loss_start"] = sum(r["loss"] for r in rows[:k]) / k
        q["loss_end"] = sum(r["loss"] for r in rows[-k:]) / k
        q["loss_window_steps"] = k
        q["input_wait_total"] = rows[-1].get("input_wait_frac_total")
        # Steady state: after the first 10% of the steps (the pipeline filling
        # and the first steps' set-up), weighted by each step's window.
        tail = rows[n // 10:] or rows
        w = sum(r.get("window_s", 0) for r in tail)
        q["input_wait_steady"] = (sum(r.get("input_wait_frac", 0) * r.get("window_s", 0) for r in tail) / w
                                  if w > 0 else None)
        span = rows[-1]["time"] - rows[0]["time"] + rows[0].get("window_s", 0)
        batch_imgs = [r["images_per_s"] * r["window_s"] for r in rows if r.get("window_s")]
        q["train_images_per_s"] = sum(batch_imgs) / span if span > 0 else None
        q["train_seconds"] = span
        q["step_s_median"] = sorted(r["step_s"] for r in rows)[n // 2]
    ev = read_json(os.path.join(out, "quickstart", "eval", "eval.json"))
    if ev:
        gt = ev.get("ground_truth") or {}
        q["map_gt"] = gt.get("mAP")
        q["prior_map_gt"] = gt.get("prior_mAP")
        q["map_captions"] = (ev.get("captions") or {}).get("mAP")
        q["eval_samples"] = ev.get("samples")
    try:
        with open(os.path.join(out, "logs", "quickstart.log"), errors="replace") as f:
            log = f.read()
        m = re.search(r"parameters\) on (\S+) (bf16 autocast|fp32)", log)
        if m:
            q["train_device"] = m.group(1)
            q["train_precision"] = "bf16" if m.group(2).startswith("bf16") else "fp32"
        m = re.search(r"\[3/6\] trained in ([0-9.]+) s", log)
        if m:
            q["train_graph_s"] = float(m.group(1))
        m = re.search(r"^total ([0-9.]+) s", log, re.M)
        if m:
            q["total_s"] = float(m.group(1))
    except OSError:
        # no quickstart log: the figures from it are left out
        pass
    return q


def fmt(v, p=3):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{p}f}"
    return str(v)


def pct(v, p=1):
    return "n/a" if v is None else f"{100 * v:.{p}f}%"


class Table:
    def __init__(self):
        self.rows = []

    def info(self, metric, value, note=""):
        self.rows.append({"metric": metric, "value": value, "target": "", "status": "", "by": note})

    def at_least(self, metric, value, target, shown, shown_target, as_pct=False):
        """A target value >= target; `shown` is how the value prints."""
        if value is None:
            self.rows.append({"metric": metric, "value": "n/a", "target": shown_target, "status": "not measured",
                              "by": ""})
            return
        met = value >= target
        by = ""
        if not met:
            gap = target - value
            by = (f"{100 * gap:.1f} points short" if as_pct else f"{gap:.3f} short") + \
                 f" ({100 * gap / target:.1f}% below the target)"
        self.rows.append({"metric": metric, "value": shown, "target": shown_target,
                          "status": "met" if met else "missed", "by": by, "raw": value})

    def below(self, metric, value, target, shown, shown_target):
        if value is None:
            self.rows.append({"metric": metric, "value": "n/a", "target": shown_target, "status": "not measured",
                              "by": ""})
            return
        met = value < target
        by = "" if met else f"{100 * (value - target):.1f} points over"
        self.rows.append({"metric": metric, "value": shown, "target": shown_target,
                          "status": "met" if met else "missed", "by": by, "raw": value})

    def markdown(self):
        lines = ["| metric | value | target | met/missed | by how much / note |", "|---|---|---|---|---|"]
        for r in self.rows:
            cells = [str(r[k]).replace("|", "/") for k in ("metric", "value", "target", "status", "by")]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", default="gpu", choices=["gpu", "dry-run"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--gpu", default="")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 0)
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()

    steps = read_steps(a.out)
    bench = read_json(os.path.join(a.out, "bench_train.json"))
    qs = quickstart_figures(a.out)
    t = Table()

    # ---- the training step: catlip vs PyTorch eager vs torch.compile
    case = (bench or {}).get("cases", [None])[0] if bench else None
    if case:
        what = (f"ViT-{case['size']}, {case['image']} px, batch {case['batch']}, {case['precision']}, "
                f"{bench.get('device_name') or case['device']}")
        cpp, eager, comp = case.get("cpp"), case.get("eager"), case.get("compile")
        ips = lambda s: s["images_per_s_best"] if s else None  # fastest steps, as the bench's ratios
        t.info(f"catlip img/s ({what})", fmt(ips(cpp), 1), "fastest step; median " + fmt(cpp and cpp["images_per_s"], 1))
        t.info("PyTorch eager img/s", fmt(ips(eager), 1),
               f"torch {bench.get('torch')}, AdamW fused={str(case.get('eager_fused_adamw')).lower()}")
        if comp:
            warm = case.get("compile_s") or []
            t.info("torch.compile img/s", fmt(ips(comp), 1),
                   f"default mode; compilation {fmt(warm[0], 1) if warm else 'n/a'} s, not in the step times")
        else:
            t.info("torch.compile img/s", "n/a", bench.get("compile_error") or
                   ("skipped (--no-compile)" if not bench.get("compile") else "did not run"))
        t.at_least("catlip / eager img/s", cpp and eager and ips(cpp) / ips(eager), TARGET_VS_EAGER,
                   fmt(cpp and eager and ips(cpp) / ips(eager), 3) + "x", f">= {TARGET_VS_EAGER}x")
        t.at_least("catlip / torch.compile img/s", cpp and comp and ips(cpp) / ips(comp), TARGET_VS_COMPILE,
                   fmt(cpp and comp and ips(cpp) / ips(comp), 3) + "x", f">= {TARGET_VS_COMPILE}x")
        peak = bench.get("peak_tflops")
        peak_note = (f"peak {fmt(peak, 1 if peak and peak >= 1 else 4)} TFLOP/s: {bench.get('peak_source')}"
                     if peak else bench.get("peak_source") or "no peak known")
        t.at_least("catlip MFU", cpp and cpp.get("mfu"), TARGET_MFU, pct(cpp and cpp.get("mfu")),
                   f">= {TARGET_MFU:.0%} (bf16)", as_pct=True)
        t.info("catlip achieved TFLOP/s", fmt(cpp and cpp.get("tflops"), 3), peak_note)
        t.info("PyTorch eager MFU", pct(eager and eager.get("mfu")))
        t.info("torch.compile MFU", pct(comp and comp.get("mfu")))
    else:
        t.info("training step bench", "n/a", "no bench_train.json (the bench step did not finish)")

    # ---- the CatLIP quickstart graph on the GPU
    if qs.get("steps"):
        dev = qs.get("train_device", "?")
        t.info("quickstart trainer device", f"{dev} {qs.get('train_precision', '')}".strip(),
               f"{qs['steps']} steps; decode on the host's {a.cores} cores")
        k = qs["loss_window_steps"]
        t.rows.append({"metric": f"quickstart loss, mean of the first -> last {k} step{'s' if k > 1 else ''}",
                       "value": f"{qs['loss_start']:.3f} -> {qs['loss_end']:.3f}", "target": "falls",
                       "status": "met" if qs["loss_end"] < qs["loss_start"] else "missed",
                       "by": "" if qs["loss_end"] < qs["loss_start"] else
                       f"rose by {qs['loss_end'] - qs['loss_start']:.3f}"})
        t.below("trainer input-wait fraction, whole run", qs.get("input_wait_total"), TARGET_INPUT_WAIT,
                pct(qs.get("input_wait_total")), f"< {TARGET_INPUT_WAIT:.0%}")
        t.info("trainer input-wait fraction, after the first 10% of steps", pct(qs.get("input_wait_steady")))
        t.info("trainer img/s (whole run)", fmt(qs.get("train_images_per_s"), 1),
               f"median step {fmt(qs.get('step_s_median'), 4)} s; training graph {fmt(qs.get('train_graph_s'), 1)} s")
    else:
        t.info("quickstart training", "n/a", "no train_metrics.jsonl (the quickstart step did not finish)")
    t.at_least("held-out mAP vs the drawn objects", qs.get("map_gt"), TARGET_MAP, fmt(qs.get("map_gt")),
               f">= {TARGET_MAP}")
    if qs.get("prior_map_gt") is not None:
        t.info("label-frequency prior mAP", fmt(qs.get("prior_map_gt")), f"{qs.get('eval_samples')} held-out samples")

    # ---- the steps
    for s in steps:
        t.rows.append({"metric": f"step: {s['step']}", "value": f"{s['seconds']:.0f} s", "target": "runs",
                       "status": {"ok": "met", "failed": "FAILED"}.get(s["status"], s["status"]),
                       "by": s["note"]})
    total = sum(s["seconds"] for s in steps)
    t.info("steps, total", f"{total:.0f} s", "budget on the GPU machine: 8 minutes" if a.mode == "gpu" else "")

    res = {
        "mode": a.mode, "device": a.device, "gpu": a.gpu or None, "host": platform.node(), "cores": a.cores,
        "python": a.python, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "targets": {"catlip_vs_eager": TARGET_VS_EAGER, "catlip_vs_compile": TARGET_VS_COMPILE, "mfu": TARGET_MFU,
                    "map_gt": TARGET_MAP, "input_wait": TARGET_INPUT_WAIT},
        "steps": steps, "bench": bench, "quickstart": qs, "table": t.rows,
        "ok": all(s["status"] != "failed" for s in steps),
    }
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    where = a.gpu or a.device
    head = (f"# GPU check: {where}, {a.cores} cores ({time.strftime('%Y-%m-%d')})\n\n"
            if a.mode == "gpu" else
            f"# GPU check, dry run on CPU ({a.cores} cores, {time.strftime('%Y-%m-%d')})\n\n"
            "The steps ran small on the CPU to check that each runs and is parsed; the targets are the GPU's "
            "and are not expected to hold here.\n\n")
    md = head + t.markdown() + "\n"
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write(md)
    print(md)
    print(f"results: {os.path.join(a.out, 'results.md')}, {os.path.join(a.out, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
