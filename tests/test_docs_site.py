"""The manual renders as written on the site: no page loses lines to MkDocs' metadata reader, and generated
grid pages carry no empty rows."""
import json
import os
from fractions import Fraction
from pathlib import Path

import pytest
from mkdocs.utils.meta import get_data
from softlabelseg.analysis.grid_report import markdown_tables
from softlabelseg.analysis.sweep import RESULT_FILE, collect, make_grid

from tests.helpers.repo import REPO

DOCS = Path(REPO) / "docs"


@pytest.mark.parametrize("page", sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")))
def test_no_page_starts_with_a_metadata_line(page):
    """MkDocs reads a leading ``key: value`` line (``Recipe: ...``) as metadata and drops it from the page."""
    text = (DOCS / page).read_text(encoding="utf-8")
    body, meta = get_data(text)
    assert not meta, f"docs/{page}: first line(s) {sorted(meta)} vanish on the site; start with a heading"
    assert body == text


def test_no_decomposition_row_without_a_shared_seed(tmp_path):
    """A grid without top-left nearest (the soft-area grid) has nothing to decompose: no section, no
    "trained model (0 seeds)" row of dashes."""
    grid = make_grid(["nearest", "soft"], [Fraction(1, 8)], [0, 1])
    for p in grid:
        os.makedirs(tmp_path / p.name / "inference")
        (tmp_path / p.name / RESULT_FILE).write_text(json.dumps({"metrics": {"mIoU": 40.0 + p.seed,
                                                                             "IoU-road": 90.0}}))
    md = markdown_tables(collect(grid, str(tmp_path)), ["road"])
    assert "Decomposition" not in md and "0 seeds" not in md
    assert "### Paired difference to nearest, centred grid" in md
