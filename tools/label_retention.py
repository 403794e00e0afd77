#!/usr/bin/env python
"""Label retention after down-sampling, nearest vs soft (the paper's Fig. 3b), printed and saved as a PNG.

For each factor, over the records of a registered dataset (default: ToyCity val, generated on first use):
  - per-class share change, 100 * (share after - share at full resolution) / share at full resolution,
    of the nearest-neighbour labels and of the soft labels' valid mass (dataset-level shares);
  - "recoverable mIoU": the labels at the reduced grid up-sampled back (bilinear on soft probabilities,
    on one-hot planes for nearest) and scored against the full-resolution labels, i.e. what a perfect
    model trained on each kind of target could reach when evaluated at full resolution.

    python tools/label_retention.py [--dataset toycity_sem_seg_val] [--factors 0.5 0.25 0.125]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import softlabel_ops


def measure(records, num_classes: int, factor: float, mode: str, antialias: bool) -> dict:
    """Dataset-level class masses and confusion matrices of the up-sampled nearest / soft labels."""
    from softlabelseg.data import read_sem_seg
    from softlabelseg.evaluation import confusion_matrix

    mass = {k: np.zeros(num_classes) for k in ("full", "nearest", "soft")}
    conf = {k: 0 for k in ("nearest", "soft")}
    for rec in records:
        lab = read_sem_seg(rec, num_classes)
        H, W = lab.shape
        size = (max(round(H * factor), 1), max(round(W * factor), 1))
        area = (H * W) / (size[0] * size[1])  # low-res pixels stand for this many full-res pixels
        soft = softlabel_ops.soft_resize(lab, num_classes, size=size, mode=mode, antialias=antialias)
        hard = softlabel_ops.hard_resize(lab, size, mode)
        mass["full"] += np.bincount(lab[lab < num_classes], minlength=num_classes)
        mass["nearest"] += area * np.bincount(hard[hard < num_classes].numpy(), minlength=num_classes)
        mass["soft"] += area * (soft.probs * soft.valid).sum((1, 2)).double().numpy()
        gt = torch.from_numpy(lab).long()
        logit = torch.log(soft.probs * soft.valid + 1e-4)[None]
        up = F.interpolate(logit, (H, W), mode="bilinear", align_corners=False)[0].argmax(0)
        conf["soft"] = conf["soft"] + confusion_matrix(up, gt, num_classes)
        one_hot = F.one_hot(torch.where(hard == 255, 0, hard), num_classes).permute(2, 0, 1).float()
        one_hot *= (hard != 255).float()
        up = F.interpolate(one_hot[None], (H, W), mode="bilinear", align_corners=False)[0].argmax(0)
        conf["nearest"] = conf["nearest"] + confusion_matrix(up, gt, num_classes)
    return {"mass": mass, "conf": conf}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="toycity_sem_seg_val")
    ap.add_argument("--factors", type=float, nargs="+", default=[0.5, 0.25, 0.125])
    ap.add_argument("--mode", default="torch:bilinear")
    ap.add_argument("--antialias", action="store_true")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N records (0: all)")
    ap.add_argument("--out", default="output/label_retention_{dataset}.png")
    args = ap.parse_args(argv)
    from softlabelseg.data import DatasetCatalog, MetadataCatalog
    from softlabelseg.evaluation import metrics_from_confusion

    records = DatasetCatalog.get(args.dataset)[: args.limit or None]
    meta = MetadataCatalog.get(args.dataset)
    names, C = list(meta.stuff_classes), meta.num_classes
    aa = " antialias" if args.antialias else ""
    print(f"{args.dataset}: {len(records)} label maps, mode {args.mode}{aa}")
    rows = []
    for f in args.factors:
        res = measure(records, C, f, args.mode, args.antialias)
        full = res["mass"]["full"] / res["mass"]["full"].sum()
        change = {k: softlabel_ops.share_change(full, res["mass"][k] / res["mass"][k].sum())
                  for k in ("nearest", "soft")}
        miou = {k: metrics_from_confusion(np.asarray(res["conf"][k]), names) for k in ("nearest", "soft")}
        rows.append((f, change, miou))
        print(f"\nfactor 1/{round(1 / f)}: share change % (nearest / soft), "
              "recoverable IoU % (nearest / soft)")
        for c, n in enumerate(names):
            print(f"  {n:>14}: {change['nearest'][c]:+7.1f} / {change['soft'][c]:+7.1f}   "
                  f"{miou['nearest']['IoU-' + n]:5.1f} / {miou['soft']['IoU-' + n]:5.1f}")
        print(f"  {'mean |change|':>14}: {np.nanmean(np.abs(change['nearest'])):7.1f} / "
              f"{np.nanmean(np.abs(change['soft'])):7.1f}   recoverable mIoU "
              f"{miou['nearest']['mIoU']:.1f} / {miou['soft']['mIoU']:.1f}")
    out = args.out.format(dataset=args.dataset)
    _plot(rows, names, out)
    print(f"\nchart: {out}")
    return 0


def _plot(rows, names, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(12, 3.2 * len(rows)), squeeze=False)
    x = np.arange(len(names))
    for ax, (f, change, miou) in zip(axes[:, 0], rows):
        for dx, k in ((-0.2, "nearest"), (0.2, "soft")):
            ax.bar(x + dx, change[k], 0.4, label=f"{k} (recoverable mIoU {miou[k]['mIoU']:.1f})")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_ylabel("share change %")
        ax.set_title(f"label down-sampling to 1/{round(1 / f)}")
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
