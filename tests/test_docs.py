"""The README and docs/: every relative link and image resolves, every #anchor names a heading of
its file (GitHub's slugs), and the README stays a README (at most 260 lines)."""
from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import REPO

MAX_README_LINES = 260
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML = re.compile(r"<(?:img|a)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but hyphens dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out = set()
    for text in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(CODE_SPAN.sub(lambda m: m.group(0).strip("`"), text))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The link and image targets of a Markdown file, outside code and comments."""
    text = COMMENT.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))
    text = CODE_SPAN.sub("", text)
    return LINK.findall(text) + HTML.findall(text)


def broken_links(path: Path) -> list[str]:
    """``target: why`` for each relative link of ``path`` that names no file or no heading."""
    bad = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            bad.append(f"{target}: no such file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    return bad


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    files = doc_files()
    assert len(files) > 5, files
    problems = [f"{p.relative_to(REPO)}: {b}" for p in files for b in broken_links(p)]
    assert not problems, "\n".join(problems)


def test_the_readme_is_short() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines (at most {MAX_README_LINES})"


def test_broken_links_reports_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## The walk of one /compose\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Bach chorales (`bach`)\n\n"
        "[ok](other.md#the-walk-of-one-compose) [self](#bach-chorales-bach) [web](https://example.com/x)\n"
        "[gone](missing.md) ![pic](figures/none.png) [wrong](other.md#nowhere) [here](#nope)\n"
        "`[in code](missing-too.md)`\n\n```\n[fenced](missing-three.md)\n```\n",
        encoding="utf-8")
    bad = broken_links(page)
    assert [b.split(":")[0] for b in bad] == ["missing.md", "figures/none.png", "other.md#nowhere", "#nope"], bad
