"""The report's grid figures record a hash of the data they plot: a committed figure whose runs changed
since it was drawn is found without redrawing it (``python tools/make_figures.py`` redraws)."""

import json
import shutil
from pathlib import Path

from softlabelseg_research.report_figures import HASH_KEY, draw_grid_figures, recorded, stale_figures

from tests.helpers.repo import REPO as _REPO
from tests.helpers.repo import load_tool

REPO = Path(_REPO)


def test_committed_figures_match_their_runs():
    assert load_tool("make_figures").main(["--check"]) == 0, "run: python tools/make_figures.py"


def _one_grid(tmp_path: Path) -> Path:
    """A repository copy holding one committed grid (cluttered ToyCity) and its manifest entry."""
    results = tmp_path / "results"
    for folder in ("toycity_cluttered", "retention_cluttered"):
        shutil.copytree(REPO / "results" / folder, results / folder)
    manifest = json.loads((REPO / "results" / "grids.json").read_text())
    manifest = {"grids": [g for g in manifest["grids"] if g["name"] == "toycity_cluttered"]}
    (results / "grids.json").write_text(json.dumps(manifest))
    return results / "grids.json"


def test_a_figure_drawn_from_other_data_is_stale(tmp_path):
    manifest = _one_grid(tmp_path)
    figures = tmp_path / "docs" / "figures"
    paths = draw_grid_figures(str(manifest), str(figures), ["toycity_cluttered"])
    assert all(len(recorded(p)[HASH_KEY]) == 64 for p in paths)
    assert stale_figures(str(manifest), str(figures)) == []
    # a run's score changes: both figures plot it
    result = manifest.parent / "toycity_cluttered" / "soft_f1of8_s1" / "inference" / "sem_seg_evaluation.json"
    data = json.loads(result.read_text())
    data["metrics"]["mIoU"] += 0.01
    result.write_text(json.dumps(data))
    stale = stale_figures(str(manifest), str(figures))
    assert [s.split(":")[0] for s in stale] == paths
    assert all("other data" in s for s in stale)
    tool = load_tool("make_figures")
    assert tool.main(["--check", "--manifest", str(manifest), "--output", str(figures)]) == 1
    # only the decomposition plots the label ceilings
    draw_grid_figures(str(manifest), str(figures), ["toycity_cluttered"])
    csv = next((manifest.parent / "retention_cluttered").glob("*_summary.csv"))
    csv.write_text(_bump_ceiling(csv.read_text()))
    stale = stale_figures(str(manifest), str(figures))
    assert [Path(s.split(":")[0]).name for s in stale] == ["decomposition.png"]


def _bump_ceiling(text: str) -> str:
    """The CSV with the soft-bilinear recoverable mIoU at 1/8 raised by one point."""
    lines = text.splitlines(keepends=True)
    header = lines[0].strip().split(",")
    col, mode = header.index("recoverable_miou"), header.index("mode")
    for i, line in enumerate(lines[1:], start=1):
        cells = line.rstrip("\n").split(",")
        if cells[mode] == "torch:bilinear" and cells[0] == "1/8":
            cells[col] = str(float(cells[col]) + 1.0)
            lines[i] = ",".join(cells) + "\n"
            return "".join(lines)
    raise AssertionError("no torch:bilinear row at 1/8")


def test_a_figure_without_a_recorded_hash_is_stale(tmp_path):
    manifest = _one_grid(tmp_path)
    figures = tmp_path / "docs" / "figures"
    figures.mkdir(parents=True)
    shutil.copy(REPO / "docs" / "figures" / "targets_1-8.png", figures / "decomposition.png")
    expected = [f"{figures / 'decomposition.png'}: records no data hash"]
    assert stale_figures(str(manifest), str(figures)) == expected
