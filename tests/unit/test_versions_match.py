"""One version for the project: pyproject.toml, the installed metadata, the Node.js
package and its lock file, and the newest release in CHANGELOG.md agree."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from seqgen_common import __version__

ROOT = Path(__file__).resolve().parents[2]


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_the_node_package_and_its_lock_follow_the_project() -> None:
    package = json.loads((ROOT / "clients" / "node" / "package.json").read_text())
    lock = json.loads((ROOT / "clients" / "node" / "package-lock.json").read_text())
    assert package["version"] == project_version()
    assert lock["version"] == lock["packages"][""]["version"] == project_version()


def test_the_installed_package_is_this_version() -> None:
    assert __version__ == project_version()


def test_the_changelog_has_unreleased_changes_and_this_version_as_the_newest_release() -> None:
    headings = re.findall(r"^## \[?([^\]\s]+)\]?", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings[1] == project_version()
    assert "0.1.0" in headings


def test_the_project_metadata_is_complete() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["authors"] and project["keywords"] and project["urls"]
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in project["classifiers"])
