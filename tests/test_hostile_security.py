"""Hostile input, class 2: code execution and file access through shared places (issue 7, items 8-9)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
from hostile import CD7, ROOT, clean_error, cli, process, write

# ------------------------------------------------------------------ 8: nothing is unpickled from /tmp


class _Planted:
    """A pickle that, when loaded, creates a marker file: proof that someone's code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def lark_cache_files(folder) -> list:
    return sorted(folder.glob(".lark_cache_*"))


def test_no_pickle_from_the_shared_temporary_folder_is_loaded(tmp_path):
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    env = {**os.environ, "TMPDIR": str(shared), "ELIGIB_NO_CACHE": "1"}
    # Where Lark keeps its pickle for eligib's grammar and options (as eligib once built it, `cache=True`):
    subprocess.run([sys.executable, "-c", (
        "from lark import Lark; from eligib.language.grammar import grammar_text\n"
        "from eligib.language.parser import _ProtocolIndenter\n"
        "Lark(grammar_text(), parser='lalr', postlex=_ProtocolIndenter(), propagate_positions=True, "
        "maybe_placeholders=False, cache=True)")], env=env, check=True, cwd=ROOT)
    [planted] = lark_cache_files(shared)
    marker = tmp_path / "code-ran"
    # what another local user could write there: Lark reads one line, then unpickles the rest
    planted.write_bytes(b"planted\n" + pickle.dumps(_Planted(str(marker))))
    ran = process("validate", CD7, env=env)
    assert ran.code == 0, ran.text
    assert not marker.exists(), "eligib unpickled a file from the shared temporary folder"


def test_parsing_creates_no_file_in_the_temporary_folder(tmp_path):
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    assert process("validate", CD7, env={"TMPDIR": str(shared), "ELIGIB_NO_CACHE": "1"}).code == 0
    assert list(shared.iterdir()) == []


# ------------------------------------------------------------------ 9: witnesses and case files


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_witnesses_are_not_written_through_planted_links(tmp_path):
    witnesses = tmp_path / "witnesses"
    witnesses.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = witnesses / "000-admits-patients-protocol.json"
    planted.symlink_to(victim)
    ran = cli("verify", CD7, "--witness-dir", str(witnesses))
    assert ran.code == 0, ran.text
    assert victim.read_text() == "precious"
    assert not planted.is_symlink() and '"age"' in planted.read_text()
    assert not any(path.name.endswith(".tmp") for path in witnesses.iterdir())


def test_an_unwritable_witness_folder_is_a_clean_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    clean_error(cli("verify", CD7, "--witness-dir", str(blocker / "witnesses")), "cannot write witnesses to")


def case_file(tmp_path, reference: str) -> str:
    text = f"cases:\n  - id: one\n    file: {reference}\n    verdict: eligible\n"
    return write(tmp_path / "cases" / "cases.yaml", text)


@pytest.mark.parametrize("reference, fragment", [
    ("../../etc/passwd", "leads outside the case file's folder"),
    ("/etc/passwd", "must be a path relative to the case file's folder"),
    ("~/.bashrc", "must be a path relative to the case file's folder"),
    (".env", "may not name a hidden file"),
    ("sub/../../outside.json", "leads outside the case file's folder"),
])
def test_case_files_only_reach_their_own_folder(tmp_path, reference, fragment):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / ".env").write_text("API_KEY=secret-value\n")
    ran = cli("test", CD7, case_file(tmp_path, reference))
    clean_error(ran, fragment)
    assert "API_KEY" not in ran.text and "secret-value" not in ran.text and "root:" not in ran.text


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_link_out_of_the_case_folder_is_refused(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "outside.json").write_text('{"age": 45}')
    (tmp_path / "cases" / "inside.json").symlink_to(tmp_path / "outside.json")
    clean_error(cli("test", CD7, case_file(tmp_path, "inside.json")), "leads outside the case file's folder")


def test_root_widens_what_case_files_may_reach(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "p.json").write_text((ROOT / "protocols/examples/ineligible-age.json").read_text())
    cases = write(tmp_path / "cases" / "c.yaml", "cases:\n  - id: one\n    file: ../examples/p.json\n"
                                                "    verdict: ineligible\n")
    clean_error(cli("test", CD7, cases), "leads outside the case file's folder")
    ran = cli("test", CD7, cases, "--root", str(tmp_path))
    assert ran.code == 0 and "1 passed" in ran.out
    clean_error(cli("test", CD7, write(tmp_path / "cases" / "d.yaml", "cases:\n  - id: one\n    file: ../../x.json\n"),
                    "--root", str(tmp_path)), "leads outside the folder")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_case_pointing_at_a_fifo_does_not_hang(tmp_path):
    (tmp_path / "cases").mkdir()
    os.mkfifo(tmp_path / "cases" / "pipe.json")
    ran = process("test", CD7, case_file(tmp_path, "pipe.json"), timeout=30)
    assert ran.code == 1 and "ERROR one" in ran.out and "not a regular file" in ran.out


def test_a_case_file_in_its_folder_still_works(tmp_path):
    (tmp_path / "cases" / "patients").mkdir(parents=True)
    example = (ROOT / "protocols/examples/ineligible-age.json").read_text()
    (tmp_path / "cases" / "patients" / "p.json").write_text(example)
    ran = cli("test", CD7, write(tmp_path / "cases" / "c.yaml", "cases:\n  - id: one\n    file: patients/p.json\n"
                                                                "    verdict: ineligible\n"))
    assert ran.code == 0 and "1 passed" in ran.out
