#!/usr/bin/env python
"""Rewrite the generated tables of the manual (train.* keys in training.md, errors in troubleshooting.md).

    python tools/make_docs_tables.py            # rewrite the marked blocks in place
    python tools/make_docs_tables.py --check    # change nothing; exit 1 naming the pages that are stale

The tables come from the code (``softlabelseg.doc_tables``); run this after changing a key, its default or
its doc, or an error message, and commit the page with the change.
"""

import argparse
import os
import sys

from softlabelseg.doc_tables import stale_pages, write_pages

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages(REPO)
        for page in stale:
            print(f"{page}: generated table is stale; run python tools/make_docs_tables.py", file=sys.stderr)
        return 1 if stale else 0
    for page in write_pages(REPO):
        print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
