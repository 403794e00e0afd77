"""Label retention after down-sampling, nearest vs soft labels (paper Fig. 3b and Fig. 4), as data.

For every factor x mode, over the label maps of a dataset split, dataset-level sums of:
  - class label mass at full resolution and after down-sampling (nearest: pixel counts; soft: the
    valid-weighted class probabilities), each low-res pixel standing for (H * W) / (h * w) full-res pixels;
    shares and their percentage change (``softlabel_ops.share_change``) follow from them;
  - multi-class pixels and per-pixel entropy of the soft labels (``softlabel_ops`` stats; a nearest label
    is one-hot, entropy 0). The entropy is also compared with that of each low-res pixel's footprint
    block (the class distribution of the full-res pixels it covers = ``torch:area``): "entropy kept";
  - "recoverable IoU": the reduced labels as log-probabilities (one-hot for nearest), up-sampled
    bilinearly to full resolution, argmax, scored against the full-resolution labels: what a perfect
    model trained on those targets could reach when evaluated at full resolution.

Per image the work is a few resizes and bincounts (sparse soft labels, no per-class Python loops), so a
split of thousands of 1024 x 2048 maps takes minutes; the recoverable IoU needs one full-resolution
up-sampling per factor x mode and is computed on an evenly spaced subset of images by default.
"""
from __future__ import annotations

import csv
import multiprocessing as mp
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from softlabelseg.data.datasets.builtin_meta import CITYSCAPES_GROUPS
from softlabelseg.utils.factors import factor_label, parse_factor

from softlabel_ops import NEAREST_MODES, hard_resize, nearest_grid, soft_resize
from softlabel_ops.labels import output_size
from softlabel_ops.modes import mode_name, spec_of
from softlabel_ops.stats import mean_entropy, multi_class_fraction, share_change

__all__ = ["THIN_CLASSES", "RetentionResult", "analyze_records", "measure_label"]

THIN_CLASSES = CITYSCAPES_GROUPS["thin"]  # the default; a dataset's metadata may name its own
FOOTPRINT = "footprint"  # key of the reference block-entropy sums
_LOG_EPS = 1e-4


def _soft_kwargs(mode: str, antialias: bool) -> dict:
    spec = spec_of(mode)
    return {"antialias": antialias and spec.torch_flags, "clamp": spec.negative_lobes}


def _confusion(pv: torch.Tensor, label: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) confusion (rows: ground truth) of argmax(bilinear up-sampling of log(pv + eps)) vs ``label``.

    pv (C, h, w) valid-weighted class mass at the reduced grid; label (H, W) train ids, values >= C
    (ignore) are left out. Only classes with mass are up-sampled (the others are constant log(eps)).
    """
    C = num_classes
    present = torch.nonzero(pv.flatten(1).sum(1) > 0).flatten()
    if present.numel() == 0:
        present = torch.zeros(1, dtype=torch.long)
    logit = torch.log(pv[present] + _LOG_EPS)[None].contiguous(memory_format=torch.channels_last)
    up = F.interpolate(logit, label.shape, mode="bilinear", align_corners=False)[0]
    pred = present[up.max(0).indices].numpy()
    idx = label.reshape(-1).astype(np.int64) * C + pred.reshape(-1)
    return np.bincount(idx, minlength=C * C)[: C * C].reshape(C, C)


def measure_label(label: np.ndarray, num_classes: int, factors, modes, *, antialias: bool = False,
                  recoverable: bool = True, ignore_value: int = 255) -> dict:
    """Retention sums of one train-id label map (H, W); add the dicts of many maps with ``_add``.

    Returns {"full": (C,) pixel counts, "images": 1, "recoverable_images": 0/1,
    (factor, mode): {"mass": (C,), "valid_px", "multi_px", "entropy": sums over valid low-res pixels,
    "conf": (C, C) int64 when recoverable}, (factor, FOOTPRINT): {"valid_px", "entropy"}}.
    """
    C = num_classes
    label = np.ascontiguousarray(label)
    H, W = label.shape
    flat = label.reshape(-1)
    out = {"full": np.bincount(flat, minlength=C)[:C].astype(np.float64), "images": 1,
           "recoverable_images": int(recoverable)}
    for f in factors:
        size = output_size((H, W), scale=f)
        area = H * W / (size[0] * size[1])  # full-res pixels per low-res pixel
        footprint = None
        for m in modes:
            if m in NEAREST_MODES:
                hard = hard_resize(label, size, m, ignore_value=ignore_value)
                keep = hard != ignore_value
                counts = torch.bincount(hard[keep], minlength=C)[:C].double().numpy()
                entry = {"mass": area * counts, "argmax_mass": area * counts, "valid_px": float(keep.sum()),
                         "multi_px": 0.0, "entropy": 0.0, "non_argmax": 0.0}
                if recoverable:
                    pv = torch.zeros((C, *size)).scatter_(0, torch.where(keep, hard, 0)[None],
                                                         keep.float()[None])
            else:
                soft = soft_resize(label, C, size=size, mode=m, ignore_value=ignore_value, sparse=True,
                                   **_soft_kwargs(m, antialias))
                w = soft.weights * soft.valid
                mass = torch.bincount(soft.indices.flatten(), w.flatten().double(), minlength=C)[:C]
                n = float((soft.valid > 0).sum())
                top = soft.indices[0][soft.valid > 0]  # sparse labels are sorted: index 0 is the argmax
                entry = {"mass": area * mass.numpy(), "valid_px": n,
                         "argmax_mass": area * torch.bincount(top, minlength=C)[:C].double().numpy(),
                         "multi_px": float(multi_class_fraction(soft)) * n,
                         "entropy": float(mean_entropy(soft)) * n,
                         "non_argmax": float((1 - soft.weights[0].double())[soft.valid > 0].sum())}
                if m == "torch:area":
                    footprint = {"valid_px": n, "entropy": entry["entropy"]}
                if recoverable:
                    pv = torch.zeros((C, *size)).scatter_add_(0, soft.indices, w)
            if recoverable:
                entry["conf"] = _confusion(pv, label, C)
            out[(f, m)] = entry
        if footprint is None:
            block = soft_resize(label, C, size=size, mode="torch:area", ignore_value=ignore_value,
                                sparse=True)
            n = float((block.valid > 0).sum())
            footprint = {"valid_px": n, "entropy": float(mean_entropy(block)) * n}
        out[(f, FOOTPRINT)] = footprint
    return out


def _add(acc: dict, res: dict) -> dict:
    """acc += res, key by key (nested dicts recursively; keys missing in acc are copied)."""
    for k, v in res.items():
        if k not in acc:
            acc[k] = {kk: np.copy(vv) for kk, vv in v.items()} if isinstance(v, dict) else np.copy(v)
        elif isinstance(v, dict):
            _add(acc[k], v)
        else:
            acc[k] = acc[k] + v
    return acc


_WORKER: dict = {}


def _init_worker(options: dict) -> None:
    torch.set_num_threads(1)
    _WORKER.update(options)


def _measure_record(job: tuple[dict, bool]) -> dict:
    from softlabelseg.data import read_sem_seg

    record, recoverable = job
    o = _WORKER
    label = read_sem_seg(record, o["num_classes"], o["ignore_value"])
    return measure_label(label, o["num_classes"], o["factors"], o["modes"], antialias=o["antialias"],
                         recoverable=recoverable, ignore_value=o["ignore_value"])


def analyze_records(records: list[dict], class_names, factors, modes, *, antialias: bool = False,
                    recoverable_images: int = 100, workers: int = 0, ignore_value: int = 255,
                    dataset: str = "", progress: bool = True,
                    thin_classes: tuple[str, ...] = THIN_CLASSES) -> RetentionResult:
    """Measures every record's label (``read_sem_seg``) and returns the dataset-level RetentionResult.

    recoverable_images: compute the recoverable IoU on this many evenly spaced records (-1: all, 0: none).
    workers: processes (0 or 1: in this process); each record is measured independently.
    thin_classes: the class names the "thin" columns average over.
    """
    from tqdm import tqdm

    factors = tuple(float(parse_factor(f)) for f in factors)
    modes = tuple(dict.fromkeys(mode_name(m) for m in modes))
    n = len(records)
    k = n if recoverable_images < 0 else min(recoverable_images, n)
    picked = set(np.linspace(0, n - 1, k).round().astype(int).tolist()) if k > 0 else set()
    options = {"num_classes": len(class_names), "factors": factors, "modes": modes, "antialias": antialias,
               "ignore_value": ignore_value}
    jobs = [(r, i in picked) for i, r in enumerate(records)]
    acc: dict = {}
    bar = dict(total=n, desc="label retention", unit="img", disable=not progress)
    if workers > 1:
        with mp.get_context("spawn").Pool(workers, _init_worker, (options,)) as pool:
            for res in tqdm(pool.imap_unordered(_measure_record, jobs, chunksize=4), **bar):
                _add(acc, res)
    else:
        _WORKER.update(options)
        for job in tqdm(jobs, **bar):
            _add(acc, _measure_record(job))
    return RetentionResult(dataset, list(class_names), factors, modes, antialias, acc, tuple(thin_classes))


@dataclass
class RetentionResult:
    """Dataset-level sums (``measure_label`` dicts added up) and the quantities derived from them."""

    dataset: str
    class_names: list[str]
    factors: tuple[float, ...]
    modes: tuple[str, ...]
    antialias: bool
    sums: dict = field(repr=False)
    thin_classes: tuple[str, ...] = THIN_CLASSES

    @property
    def images(self) -> int:
        return int(self.sums.get("images", 0))

    @property
    def recoverable_images(self) -> int:
        return int(self.sums.get("recoverable_images", 0))

    def mode_label(self, mode: str) -> str:
        """Full ``lib:filter`` name; nearest modes say their grid, e.g. 'torch:nearest (top-left)'."""
        if mode in NEAREST_MODES:
            return f"{mode} ({nearest_grid(mode)})"
        return mode + ("+antialias" if self.antialias and spec_of(mode).torch_flags else "")

    def is_soft(self, mode: str) -> bool:
        return mode not in NEAREST_MODES

    def full_share(self) -> np.ndarray:
        full = self.sums["full"]
        return full / max(full.sum(), 1e-12)

    def share(self, f: float, mode: str) -> np.ndarray:
        mass = self.sums[(f, mode)]["mass"]
        return mass / max(mass.sum(), 1e-12)

    def share_change(self, f: float, mode: str) -> np.ndarray:
        """Percentage change of each class's share vs full resolution (nan for absent classes)."""
        return share_change(self.full_share(), self.share(f, mode))

    def argmax_share_change(self, f: float, mode: str) -> np.ndarray:
        """Like ``share_change`` for the argmax of the reduced labels (what a hard decision keeps): soft
        labels keep a thin class's mass but rarely let it win a cell."""
        mass = self.sums[(f, mode)]["argmax_mass"]
        return share_change(self.full_share(), mass / max(mass.sum(), 1e-12))

    def multi_class_fraction(self, f: float, mode: str) -> float:
        e = self.sums[(f, mode)]
        return e["multi_px"] / e["valid_px"] if e["valid_px"] else 0.0

    def mean_entropy(self, f: float, mode: str) -> float:
        e = self.sums[(f, mode)]
        return e["entropy"] / e["valid_px"] if e["valid_px"] else 0.0

    def non_argmax_mass(self, f: float, mode: str) -> float:
        """Mean probability off each reduced pixel's top class (0 for hard labels): what a hard decision
        drops, and the mass a label-smoothing control spreads to match a soft target."""
        e = self.sums[(f, mode)]
        return e.get("non_argmax", float("nan")) / e["valid_px"] if e["valid_px"] else 0.0

    def footprint_entropy(self, f: float) -> float:
        e = self.sums[(f, FOOTPRINT)]
        return e["entropy"] / e["valid_px"] if e["valid_px"] else 0.0

    def entropy_kept_pct(self, f: float, mode: str) -> float:
        """100 * soft-label entropy / entropy of the low-res pixels' full-res footprints."""
        ref = self.footprint_entropy(f)
        return 100.0 * self.mean_entropy(f, mode) / ref if ref > 0 else float("nan")

    def mass_kept_pct(self, f: float, mode: str) -> float:
        """Histogram intersection of the class shares, 100 * sum_c min(full_c, after_c)."""
        return 100.0 * float(np.minimum(self.full_share(), self.share(f, mode)).sum())

    def recoverable(self, f: float, mode: str) -> dict | None:
        """metrics_from_confusion of the recovered labels (mIoU, IoU-<class>, ...) or None."""
        from softlabelseg.evaluation import metrics_from_confusion

        conf = self.sums[(f, mode)].get("conf")
        return None if conf is None else metrics_from_confusion(conf, self.class_names)

    def thin_change(self, f: float, mode: str, argmax: bool = False, signed: bool = False) -> float:
        """Mean |share change| (or signed change) over the thin classes (``thin_classes``) in the data, of the
        soft labels' mass or (``argmax``) of their argmax."""
        idx = [i for i, n in enumerate(self.class_names) if n in self.thin_classes]
        change = self.argmax_share_change(f, mode) if argmax else self.share_change(f, mode)
        vals = change[idx] if idx else np.array([np.nan])
        vals = vals if signed else np.abs(vals)
        return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")

    def summary_row(self, f: float, m: str) -> dict:
        """Scalars of one factor x mode."""
        rec = self.recoverable(f, m)
        return {
            "factor": factor_label(f), "mode": self.mode_label(m),
            "kind": "soft" if self.is_soft(m) else "hard",
            "mean_abs_share_change_pct": float(np.nanmean(np.abs(self.share_change(f, m)))),
            "thin_abs_share_change_pct": self.thin_change(f, m),
            "thin_argmax_share_change_pct": self.thin_change(f, m, argmax=True, signed=True),
            "multi_class_pct": 100.0 * self.multi_class_fraction(f, m),
            "mean_entropy_nats": self.mean_entropy(f, m),
            "non_argmax_mass_pct": 100.0 * self.non_argmax_mass(f, m),
            "footprint_entropy_nats": self.footprint_entropy(f),
            "entropy_kept_pct": self.entropy_kept_pct(f, m),
            "mass_kept_pct": self.mass_kept_pct(f, m),
            "recoverable_miou": rec["mIoU"] if rec else float("nan"),
            "images": self.images, "recoverable_images": self.recoverable_images,
        }

    def summary_rows(self) -> list[dict]:
        """One row per factor x mode."""
        return [self.summary_row(f, m) for f in self.factors for m in self.modes]

    def class_rows(self) -> list[dict]:
        """One row per factor x mode x class (the CSV)."""
        full = self.full_share()
        rows = []
        for f, m in ((f, m) for f in self.factors for m in self.modes):
            s = self.summary_row(f, m)
            share, change, rec = self.share(f, m), self.share_change(f, m), self.recoverable(f, m)
            for c, name in enumerate(self.class_names):
                rows.append({"dataset": self.dataset, **{k: s[k] for k in ("factor", "mode", "kind")},
                             "class_id": c, "class": name, "full_share": float(full[c]),
                             "share": float(share[c]), "share_change_pct": float(change[c]),
                             "argmax_share_change_pct": float(self.argmax_share_change(f, m)[c]),
                             "recoverable_iou": rec[f"IoU-{name}"] if rec else float("nan"),
                             **{k: v for k, v in s.items() if k not in ("factor", "mode", "kind")}})
        return rows

    def write_csv(self, path: str, rows: list[dict] | None = None) -> None:
        rows = self.class_rows() if rows is None else rows
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            for r in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    def format_tables(self) -> str:
        """Summary table (per factor x mode) and per-class share-change table, as text."""
        from tabulate import tabulate

        head = ["factor", "mode", "mean |Δshare| %", "thin |Δshare| %", "thin Δshare at argmax %",
                "multi-class %", "off-argmax mass %", "entropy", "entropy kept %", "mass kept %",
                "recoverable mIoU"]
        keys = ["factor", "mode", "mean_abs_share_change_pct", "thin_abs_share_change_pct",
                "thin_argmax_share_change_pct", "multi_class_pct", "non_argmax_mass_pct", "mean_entropy_nats",
                "entropy_kept_pct", "mass_kept_pct", "recoverable_miou"]
        summary = tabulate([[r[k] for k in keys] for r in self.summary_rows()], head, floatfmt=".2f")
        cols = [(f, m) for f in self.factors for m in self.modes]
        full = self.full_share()
        body = [[n, 100 * full[c]] + [self.share_change(f, m)[c] for f, m in cols]
                for c, n in enumerate(self.class_names)]
        head = ["class", "full share %"] + [f"{factor_label(f)} {self.mode_label(m)}" for f, m in cols]
        per_class = tabulate(body, head, floatfmt=["", ".2f"] + ["+.1f"] * len(cols))
        rec = (f"recoverable mIoU on {self.recoverable_images} of {self.images} images"
               if self.recoverable_images else "recoverable mIoU not computed")
        return (f"{self.dataset}: {self.images} label maps; {rec}\n\n{summary}\n\n"
                "per-class share change % vs full resolution "
                f"(thin classes: {', '.join(self.thin_classes)})\n"
                f"{per_class}")

