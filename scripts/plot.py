#!/usr/bin/python3
"""plot.py: pictures of a run, with Debian's python3-matplotlib (run with /usr/bin/python3).

  plot.py loss METRICS.jsonl OUT.png      train/val loss at eval points and the logged loss
  plot.py memory COMPARE.json OUT.png     stacked bars by category per recompute mode, from
                                          `arenagpt mem --compare --format=json`
  plot.py timeline TRACE.json OUT.png     bytes per category over one step, from a Chrome
                                          trace written by `--trace_file` (stacked areas)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CATEGORIES = ["params", "grads", "optimizer", "activations", "workspace"]
COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]
MIB = 1024.0 * 1024.0


def plot_loss(src, out):
    steps, losses, ev_it, ev_train, ev_val = [], [], [], [], []
    with open(src) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "val_loss" in r:
                ev_it.append(r["iter"])
                ev_train.append(r["train_loss"])
                ev_val.append(r["val_loss"])
            elif "loss" in r:
                steps.append(r["iter"])
                losses.append(r["loss"])
    if not steps and not ev_it:
        sys.exit(f"plot.py: {src} has no loss records")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if steps:
        ax.plot(steps, losses, color="#999999", lw=1, label="train (logged micro-batches)")
    if ev_it:
        ax.plot(ev_it, ev_train, "o-", color=COLORS[0], label="train (eval)")
        ax.plot(ev_it, ev_val, "o-", color=COLORS[3], label="val (eval)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(f"loss: {src}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def plot_memory(src, out):
    with open(src) as f:
        d = json.load(f)
    modes = d.get("modes")
    if not modes:
        sys.exit(f"plot.py: {src} has no 'modes' (make it with arenagpt mem --compare --format=json)")
    names = [m["recompute"] for m in modes]
    fig, ax = plt.subplots(figsize=(7, 5))
    bottom = [0.0] * len(modes)
    for cat, color in zip(CATEGORIES, COLORS):
        vals = [m["at_peak"][cat + "_bytes"] / MIB for m in modes]
        ax.bar(names, vals, bottom=bottom, color=color, label=cat)
        bottom = [b + v for b, v in zip(bottom, vals)]
    for i, m in enumerate(modes):
        ax.text(i, bottom[i], f"{m['peak_bytes'] / MIB:.0f} MiB", ha="center", va="bottom")
    model = d.get("model", {})
    ax.set_title(
        f"arena at the step's peak, device {d.get('device')}: L{model.get('n_layer')} "
        f"C{model.get('n_embd')} T{model.get('block_size')} B{d.get('batch_size')}"
    )
    ax.set_xlabel("recompute")
    ax.set_ylabel("MiB")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def plot_timeline(src, out):
    with open(src) as f:
        d = json.load(f)
    ts, series = [], {c: [] for c in CATEGORIES}
    for e in d["traceEvents"]:
        if e.get("ph") == "C":
            ts.append(e["ts"])
            for c in CATEGORIES:
                series[c].append(e["args"].get(c, 0) / MIB)
    if not ts:
        sys.exit(f"plot.py: {src} has no counter events")
    plan = d.get("otherData", {}).get("backing") == "plan"
    t0 = ts[0]
    x = [t - t0 if plan else (t - t0) / 1000.0 for t in ts]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.stackplot(x, [series[c] for c in CATEGORIES], labels=CATEGORIES, colors=COLORS, step="post")
    ax.set_xlabel("allocation event (a plan has no clock)" if plan else "ms since the arena was made")
    ax.set_ylabel("MiB held")
    ax.set_title(f"arena over time: {src}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv):
    if len(argv) != 4 or argv[1] not in ("loss", "memory", "timeline"):
        sys.exit(__doc__)
    {"loss": plot_loss, "memory": plot_memory, "timeline": plot_timeline}[argv[1]](argv[2], argv[3])
    print(f"plot.py: wrote {argv[3]}")


if __name__ == "__main__":
    main(sys.argv)
