"""Every relative link and picture of the documents (README, docs/, model cards, training/README.md) points to
a file of the repository: a regenerated document whose pictures were not committed fails here."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "training" / "README.md"]
    + list((ROOT / "docs").glob("*.md"))
    + list((ROOT / "her2fast" / "models").glob("*/MODEL_CARD.md"))
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _targets(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks are not links
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m.group(1) for m in LINK.finditer(text)]


def test_the_link_pattern_finds_links_and_pictures_outside_code():
    text = "see [a](docs/a.md#part) and ![b](img/b.png)\n```\n[c](c.md)\n```\n`[d](d.md)` [e](https://x.org)"
    assert _targets(text) == ["docs/a.md#part", "img/b.png", "https://x.org"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files(document: Path):
    assert document.exists(), document
    missing = []
    for target in _targets(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or an anchor in the same document
        path = unquote(target.split("#", 1)[0])
        if not (document.parent / path).exists():
            missing.append(target)
    assert not missing, f"{document.relative_to(ROOT)} links to missing files: {missing}"
