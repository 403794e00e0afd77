#!/usr/bin/env python
"""Draw the README's and the evidence report's figures from the data and the runs.

    python tools/make_figures.py --output docs/figures \
        --targets-runs output/camvid_tiny_wide --targets-factor 1/8 --targets-seed 0

- ``targets_<factor>.png``: one CamVid test crop with poles and signs (the one holding the most of them):
  the four kinds of training target at the factor, and the predictions of the grid's models trained on each
  (``--targets-runs``: a grid folder whose runs still hold their ``model_final.pth``; the committed grids
  keep no weights, so this panel needs the grid's own output folder).
- ``miou_vs_factor.png`` and ``decomposition.png``: from the finished runs of the grids named in
  ``results/grids.json`` (``--grids``), each with the hash of the data it plots in its PNG text
  (``softlabelseg_research.report_figures``). ``python tools/make_report.py --plots`` redraws them too.

    python tools/make_figures.py --check   # exit 1 when a grid figure's data hash differs from its runs

The check reads the runs, not the pixels, and covers the grid figures only: the targets figure's inputs
(CamVid's images, the weights) are not in the repository.
"""
import argparse
import os
import sys

from softlabelseg_research.report_figures import DEFAULT_GRIDS

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "results", "grids.json")


def _targets(args) -> str:
    import torch
    from softlabelseg.config import LazyConfig, instantiate
    from softlabelseg.data import DatasetCatalog, MetadataCatalog, read_image, read_sem_seg
    from softlabelseg.engine.checkpoint import Checkpointer
    from softlabelseg.evaluation.demo import predict_image
    from softlabelseg.utils.factors import parse_factor
    from softlabelseg_research.figures import TARGETS, pick_crop, targets_figure

    factor = parse_factor(args.targets_factor)
    tag = f"f{factor.numerator}of{factor.denominator}_s{args.targets_seed}"
    runs = {v: os.path.join(args.targets_runs, f"{v}_{tag}") for v, _ in TARGETS}
    cfg = LazyConfig.load(os.path.join(runs["nearest"], "config.yaml"))
    dataset = cfg.dataloader.test.dataset
    meta = MetadataCatalog.get(dataset)
    names = list(meta.stuff_classes)
    thin = [names.index(n) for n in args.thin if n in names]
    size = (meta.evaluation_resolution[0] // 3, meta.evaluation_resolution[1] // 3)
    best = None
    for record in DatasetCatalog.get(dataset):
        label = read_sem_seg(record, len(names))
        y, x = pick_crop(label, thin, size, step=16)
        window = label[y:y + size[0], x:x + size[1]]
        score = (sum(bool((window == c).any()) for c in thin), sum(int((window == c).sum()) for c in thin))
        if best is None or score > best[0]:
            best = (score, record, (y, x, *size))
    _, record, crop = best
    image, label = read_image(record["file_name"]), read_sem_seg(record, len(names))
    predictions = {}
    with torch.no_grad():
        for variant, folder in runs.items():
            weights = os.path.join(folder, "model_final.pth")
            if not os.path.isfile(weights):
                print(f"no {weights}: that panel stays blank", file=sys.stderr)
                continue
            run_cfg = LazyConfig.load(os.path.join(folder, "config.yaml"))
            model = instantiate(run_cfg.model)
            Checkpointer(model).load(weights, checkpointables=[], strict=True)
            model.eval()
            predictions[variant] = predict_image(model, instantiate(run_cfg.dataloader.test.mapper),
                                                 record["file_name"])[1]
    path = os.path.join(args.output, f"targets_{args.targets_factor.replace('/', '-')}.png")
    targets_figure(image, label, predictions, names, meta.stuff_colors, float(factor), crop, path,
                   title=f"{record['image_id']} ({dataset}) at {args.targets_factor}: targets and "
                         f"predictions of the models trained on them (seed {args.targets_seed})")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--output", default="docs/figures")
    ap.add_argument("--manifest", default=MANIFEST)
    ap.add_argument("--grids", nargs="*", default=None,
                    help="grids of the manifest to plot (default: " + " ".join(DEFAULT_GRIDS) + ")")
    ap.add_argument("--check", action="store_true",
                    help="draw nothing; exit 1 when a grid figure in --output no longer matches its runs")
    ap.add_argument("--targets-runs", help="a grid's output folder holding model_final.pth of each run")
    ap.add_argument("--targets-factor", default="1/8")
    ap.add_argument("--targets-seed", type=int, default=0)
    ap.add_argument("--thin", nargs="*", default=["pole", "sign-symbol"], help="classes the crop must show")
    args = ap.parse_args(argv)
    from softlabelseg_research.report_figures import draw_grid_figures, stale_figures

    if args.check:
        stale = stale_figures(args.manifest, args.output)
        print(f"{len(stale)} figure(s) stale" + "".join(f"\n  {s}" for s in stale)
              + ("\nredraw: python tools/make_figures.py" if stale else ""))
        return 1 if stale else 0
    grids = DEFAULT_GRIDS if args.grids is None else args.grids
    try:
        written = draw_grid_figures(args.manifest, args.output, grids) if grids else []
    except KeyError as e:
        print(f"error: --grids: {e.args[0]}", file=sys.stderr)
        return 2
    if args.targets_runs:
        written.append(_targets(args))
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
