# Documentation targets; the project itself installs and runs with pip and python alone (README).
.PHONY: docs docs-check

# The manual as a site in site/ (a broken link, anchor or nav entry fails).
docs:
	NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict

# Build the site and read every page in headless Chromium at desktop and phone widths
# (Debian: apt-get install chromium); exit 1 on a broken image, a Markdown artefact or an overflow.
# DOCS_CHECK_ARGS="--screens shots/" also saves screenshots of the main pages.
docs-check:
	OMP_NUM_THREADS=1 python tools/check_docs_site.py $(DOCS_CHECK_ARGS)
