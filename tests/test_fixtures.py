"""The recorded fixtures in the repository are exactly the ones their sha256 list names."""

from __future__ import annotations

import hashlib

from conftest import FIXTURES, FIXTURES_ROOT, HMAC_VECTORS, REPO

SUMS = FIXTURES_ROOT / "SHA256SUMS"
UNLISTED = {"README.md", "SHA256SUMS"}  # the list itself and the folder's README


def listed() -> dict[str, str]:
    """``relative path -> sha256`` from ``SHA256SUMS`` (``sha256sum`` format)."""
    sums: dict[str, str] = {}
    for line in SUMS.read_text(encoding="utf-8").splitlines():
        digest, _, relative = line.partition("  ")
        assert len(digest) == 64 and relative, f"malformed line in SHA256SUMS: {line!r}"
        assert relative not in sums, f"{relative} listed twice"
        sums[relative] = digest
    return sums


def test_every_fixture_file_is_listed_and_every_listed_file_exists() -> None:
    on_disk = {
        path.relative_to(FIXTURES_ROOT).as_posix()
        for path in FIXTURES_ROOT.rglob("*")
        if path.is_file() and path.relative_to(FIXTURES_ROOT).as_posix() not in UNLISTED
    }
    assert on_disk == set(listed())


def test_every_fixture_file_has_its_listed_sha256() -> None:
    changed = [
        relative
        for relative, digest in listed().items()
        if hashlib.sha256((FIXTURES_ROOT / relative).read_bytes()).hexdigest() != digest
    ]
    assert changed == []


def test_the_fixture_paths_are_inside_the_repository() -> None:
    assert FIXTURES.is_relative_to(REPO) and FIXTURES.is_dir()
    assert HMAC_VECTORS.is_relative_to(REPO) and HMAC_VECTORS.is_file()
    assert (FIXTURES / "README.md").is_file()  # the attribution its sources ask for
