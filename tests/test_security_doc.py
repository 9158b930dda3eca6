"""docs/security.md: every claim names the test that proves it, and every test it names exists."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs/security.md"
REF = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`")


def claims():
    """(heading, bullet text) of every bullet under the headings that state what holds."""
    heading, bullet, out = "", None, []
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:]
        if line.startswith("- "):
            bullet = [line]
            out.append((heading, bullet))
        elif line.startswith("  ") and bullet is not None:
            bullet.append(line)
        else:
            bullet = None
    return [(h, " ".join(b)) for h, b in out if not h.startswith("What is left")]


def test_every_claim_names_a_test():
    found = claims()
    assert len(found) > 20
    missing = [text[:80] for _, text in found if not REF.search(text)]
    assert not missing, f"claims without a test: {missing}"


def test_every_named_test_exists():
    unknown = []
    for _, text in claims():
        path = None
        for m in REF.finditer(text):
            path = m.group(1) or path
            name = m.group(2) or m.group(3)
            source = (REPO / path).read_text() if path and (REPO / path).exists() else None
            if source is None:
                unknown.append(path)
            elif name and not re.search(rf"^(async )?def {name}\(", source, re.M):
                unknown.append(f"{path}::{name}")
    assert not unknown, f"named in docs/security.md but not found: {unknown}"
