"""docs/architecture.md stays true: every file and folder it names exists in the tree.

The page is the map a newcomer reads after the README; a module renamed or moved without
updating it would send them to a place that is gone.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "architecture.md"
#: Where a bare module name (``handlers.py``) may live.
SOURCE_ROOTS = [ROOT / "engine", ROOT / "operator", ROOT / "sandbox", ROOT / "tests", ROOT]


def _named_paths() -> set[str]:
    """Backticked names in the page that look like a file or folder: ``x.py``, ``a/b/``."""
    names = set(re.findall(r"`([\w./-]+(?:\.py|\.md|/))`", DOC.read_text()))
    return {name for name in names if "<" not in name}


def _exists(name: str) -> bool:
    """True when ``name`` is a path from the root, or a path tail under a source root."""
    stripped = name.strip("/")
    if (ROOT / stripped).exists():
        return True
    return any(any(root.rglob(stripped)) for root in SOURCE_ROOTS if "/" not in stripped) or \
        any(any(p for p in root.rglob(Path(stripped).name) if p.as_posix().endswith(stripped))
            for root in SOURCE_ROOTS)


def test_the_page_names_files() -> None:
    assert len(_named_paths()) > 40  # the page's tables, not an accident of the regex


def test_every_named_file_and_folder_exists() -> None:
    missing = sorted(name for name in _named_paths() if not _exists(name))
    assert not missing, f"docs/architecture.md names what does not exist: {missing}"
