# The two commands of lmbook (see README.md). Both create the project-local .venv on first use.
.PHONY: book test data clean-book

# Execute every chapter (profile chosen by hardware; LMBOOK_PROFILE=smoke|reference|cpu|paper overrides)
# and build the HTML book into _build/html.
book:
	@bash tools/lmbook book

# Unit tests, every chapter in the smoke profile, the book built with warnings as errors, and a
# headless-Chromium check of the built pages. .ci/run calls exactly this.
test:
	@bash tools/lmbook test

# Fetch the registry data sets and weights the chapters use (done by both targets above).
data:
	@bash tools/lmbook data

clean-book:
	rm -rf _build
