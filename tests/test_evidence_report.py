"""The evidence report's tables are made from the runs' own outputs: a committed table that disagrees with
the files it was made from fails here (``python tools/make_report.py`` rewrites it)."""

import json
import shutil
from pathlib import Path

from softlabelseg_research.evidence import render_all
from softlabelseg_research.markdown_blocks import BlockError, replace_block

from tests.helpers.repo import REPO as _REPO
from tests.helpers.repo import load_tool

REPO = Path(_REPO)


def test_every_committed_table_matches_its_runs():
    assert load_tool("make_report").main(["--check"]) == 0, "run: python tools/make_report.py"


def test_a_stale_table_is_found(tmp_path):
    """A copy of one grid with one result changed: its committed table is then stale, and only it."""
    evidence, results = tmp_path / "docs" / "evidence", tmp_path / "results"
    evidence.mkdir(parents=True)
    shutil.copytree(REPO / "results" / "toycity_cluttered", results / "toycity_cluttered")
    shutil.copytree(REPO / "results" / "retention_cluttered", results / "retention_cluttered")
    manifest = json.loads((REPO / "results" / "grids.json").read_text())
    manifest["grids"] = [g for g in manifest["grids"] if g["name"] == "toycity_cluttered"]
    manifest["grids"][0]["config"] = str(REPO / manifest["grids"][0]["config"])
    manifest["regimes"] = []
    (results / "grids.json").write_text(json.dumps(manifest))
    (evidence / "README.md").write_text("intro\n<!-- summary-toycity_cluttered:start -->\n"
                                        "<!-- summary-toycity_cluttered:end -->\n")
    tool = load_tool("make_report")
    assert tool.main(["--manifest", str(results / "grids.json")]) == 0  # writes both
    assert tool.main(["--manifest", str(results / "grids.json"), "--check"]) == 0
    result = results / "toycity_cluttered" / "soft_f1of8_s1" / "inference" / "sem_seg_evaluation.json"
    data = json.loads(result.read_text())
    data["metrics"]["mIoU"] += 1.0
    result.write_text(json.dumps(data))
    assert tool.main(["--manifest", str(results / "grids.json"), "--check"]) == 1
    stale = {p for p, text in render_all(str(results / "grids.json")).items() if Path(p).read_text() != text}
    assert stale == {str(evidence / "grids" / "toycity_cluttered.md"), str(evidence / "README.md")}


def test_blocks_are_replaced_between_their_markers_only():
    text = "a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n"
    assert replace_block(text, "x", "new\n") == "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n"
    try:
        replace_block("no markers", "x", "new\n")
    except BlockError as e:
        assert "x:start" in str(e)
    else:
        raise AssertionError("a missing block must raise")


def test_readme_links_are_rebased_onto_docs():
    from softlabelseg_research.evidence import site_links

    text = ("[report](docs/evidence/README.md#a) ![fig](docs/figures/f.png) [cite](#citation) "
            "[tool](tools/make_report.py#L3) [web](https://e.org/docs/x)")
    assert site_links(text) == ("[report](evidence/README.md#a) ![fig](figures/f.png) cite "
                                "tool (`tools/make_report.py`) [web](https://e.org/docs/x)")


def test_readme_figure_comes_with_its_caption():
    from softlabelseg_research.evidence import readme_figure

    readme = "intro\n\n![a plot](docs/figures/p.png)\n\n*What it shows, [data](docs/d.md).*\n\n## Next\n"
    assert readme_figure(readme, "p") == "![a plot](figures/p.png)\n\n*What it shows, [data](d.md).*\n"
    try:
        readme_figure(readme, "q")
    except KeyError as e:
        assert "docs/figures/q.png" in str(e)
    else:
        raise AssertionError("a figure the README does not show must raise")


def _block(text: str, name: str) -> str:
    return text.split(f"<!-- {name}:start -->\n", 1)[1].split(f"<!-- {name}:end -->", 1)[0]


def test_home_page_says_what_the_readme_says():
    """The site's home page carries the README's findings table and targets figure, with site links."""
    readme = (REPO / "README.md").read_text()
    home = (REPO / "docs" / "index.md").read_text()
    assert _block(home, "findings") == _block(readme, "findings").replace("](docs/", "](")
    figure = _block(home, "figure-targets_1-8")
    assert figure.startswith("![") and "(figures/targets_1-8.png)" in figure
    assert (REPO / "docs" / "figures" / "targets_1-8.png").is_file()
    job = _block(home, "mainjob")
    assert job.split(" The centred-nearest")[0] == _block(readme, "mainjob").split(" The centred-nearest")[0]


def test_results_page_has_a_table_per_measured_grid():
    """docs/results.md: a section per grid folder with a finished run, linking its page; the rest named."""
    from softlabelseg_research.evidence import load_manifest
    from softlabelseg_research.sweep import collect

    manifest = load_manifest(str(REPO / "results" / "grids.json"))
    page = (REPO / "docs" / "results.md").read_text()
    assert "### Main job" in page
    for spec in manifest["grids"]:
        link = f"({spec.page.removeprefix('docs/')})"
        if collect(spec.points(), str(REPO / spec.folder)):
            assert link in page, spec.name
        else:
            assert spec.title in page.split("No run finished yet:", 1)[1], spec.name


def test_results_rows_follow_their_runs(tmp_path):
    """A grid's row: its seeds, mean ± std mIoU over them and the overrides of its target; a changed run
    makes the committed page stale."""
    import statistics

    evidence, results = tmp_path / "docs" / "evidence", tmp_path / "results"
    evidence.mkdir(parents=True)
    shutil.copytree(REPO / "results" / "toycity_cluttered", results / "toycity_cluttered")
    manifest = json.loads((REPO / "results" / "grids.json").read_text())
    grid = next(g for g in manifest["grids"] if g["name"] == "toycity_cluttered")
    grid.pop("ceilings")
    grid["config"] = str(REPO / grid["config"])
    (results / "grids.json").write_text(json.dumps({"grids": [grid]}))
    page = tmp_path / "docs" / "results.md"
    page.write_text("intro\n<!-- results:start -->\n<!-- results:end -->\n")
    runs = [json.loads((results / "toycity_cluttered" / f"soft_f1of8_s{s}" / "inference" /
                        "sem_seg_evaluation.json").read_text())["metrics"]["mIoU"] for s in (0, 1, 2)]
    text = render_all(str(results / "grids.json"))[str(page)]
    row = next(line for line in text.splitlines() if line.startswith("| 1/8 | soft |"))
    assert row.split(" | ")[2:5] == ["`label_mode=soft` `factor=0.125`", "3",
                                     f"{statistics.mean(runs):.2f} ± {statistics.stdev(runs):.2f}"]
    assert "(evidence/grids/toycity_cluttered.md)" in text
    page.write_text(text)
    tool = load_tool("make_report")
    (evidence / "README.md").write_text("")
    assert tool.main(["--manifest", str(results / "grids.json")]) == 0
    assert tool.main(["--manifest", str(results / "grids.json"), "--check"]) == 0
    result = results / "toycity_cluttered" / "soft_f1of8_s0" / "inference" / "sem_seg_evaluation.json"
    data = json.loads(result.read_text())
    data["metrics"]["mIoU"] += 1.0
    result.write_text(json.dumps(data))
    stale = {p for p, t in render_all(str(results / "grids.json")).items() if Path(p).read_text() != t}
    assert str(page) in stale


def test_the_gap_table_is_ceiling_minus_each_grids_mean():
    """Each gap row: the ceiling the CSV holds, each grid's mean mIoU over its seeds, and their difference,
    for the entry's targets only."""
    import statistics

    from softlabelseg_research.evidence import gap_table, load_manifest, read_ceilings
    from softlabelseg_research.grid_stats import by_cell
    from softlabelseg_research.sweep import VARIANTS, collect

    manifest = load_manifest(str(REPO / "results" / "grids.json"))
    item = manifest["gaps"][0]
    spec = next(g for g in manifest["grids"] if g.name == item["grids"][0]["grid"])
    ceilings = read_ceilings(str(REPO / item["ceilings"]))
    cells = by_cell(collect(spec.points(), str(REPO / spec.folder)))
    by_title = {VARIANTS[v].title: v for v in item["variants"]}
    rows = [line.strip("| ").split(" | ") for line in gap_table(item, manifest, str(REPO)).splitlines()[2:]]
    assert rows and {r[0] for r in rows} <= set(by_title)
    for row in rows:
        variant = by_title[row[0]]
        factor = next(f for v, f in cells if v == variant and str(f) == row[1])
        mean = statistics.mean(m["mIoU"] for m in cells[(variant, factor)].values())
        assert float(row[2]) == round(ceilings[(variant, factor)], 2)
        assert abs(float(row[4]) - (ceilings[(variant, factor)] - mean)) < 0.006
