"""The documentation's examples run as tests, so the docs cannot drift from what eligib does.

Each document runs in a folder of its own (tests/docs_runner.py has the conventions; docs/testing.md
the reader's version). `pytest tests/test_docs.py --update-docs` writes the current output into the
documents instead; review the diff before committing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_runner import DOCUMENTS, run_document, shared_files, update


@pytest.fixture(scope="module")
def shared() -> dict[str, str]:
    return shared_files(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_examples_print_what_the_document_shows(document: Path, shared: dict[str, str], tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    mismatches = run_document(document, tmp_path, shared)
    if mismatches and request.config.getoption("--update-docs"):
        mismatches = update(document, mismatches)
    assert not mismatches, "\n\n".join(map(str, mismatches))


def test_every_document_has_examples_that_run() -> None:
    """A document whose examples were all skipped or mislabelled would pass without testing anything."""
    from docs_runner import blocks

    for document in DOCUMENTS:
        kinds = {block.kind for block in blocks(document)}
        if document.name != "testing.md":
            assert kinds & {"console", "pycon", "python"}, f"{document.name} has no example that runs"
