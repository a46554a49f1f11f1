"""Guard rails that keep the code as it was designed: strict types, the import layering, the linter,
modules small enough to read, and the optional parts optional. Each runs the real tool."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MAX_MODULE_LINES = 500


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mypy_strict_is_clean():
    result = run(str(BIN / "mypy"), "--strict", "eligib")
    assert result.returncode == 0, result.stdout + result.stderr


def test_imports_follow_the_layering():
    result = run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean():
    result = run(str(BIN / "ruff"), "check", "eligib", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_too_long_to_read():
    long = {str(path.relative_to(ROOT)): lines for path in (ROOT / "eligib").rglob("*.py")
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_checking_a_patient_needs_neither_hypothesis_nor_z3_for_a_complete_patient():
    program = ("import sys\n"
               "sys.modules['hypothesis'] = None\n"  # importing it now fails, as when it is not installed
               "from eligib import Engine\n"
               f"engine = Engine.from_file({str(ROOT / 'protocols' / 'cd7_car_t.elig')!r})\n"
               f"result = engine.check({str(ROOT / 'protocols' / 'examples' / 'ineligible-alt.json')!r})\n"
               "assert result.verdict == 'ineligible', result.verdict\n"
               "print('z3' in sys.modules)\n")
    result = run(sys.executable, "-c", program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"  # a complete patient is decided without the solver


def test_eligib_testing_says_what_it_needs_without_hypothesis():
    program = "import sys\nsys.modules['hypothesis'] = None\nimport eligib.testing\n"
    result = run(sys.executable, "-c", program)
    assert result.returncode != 0 and "eligib.testing needs hypothesis" in result.stderr


def test_every_diagnostic_code_is_in_the_error_catalogue():
    import re

    catalogue = (ROOT / "docs" / "errors.md").read_text()
    headings = set(re.findall(r"`([a-z-]+)`", "\n".join(line for line in catalogue.splitlines()
                                                       if line.startswith("#"))))
    codes = {code for path in (ROOT / "eligib").rglob("*.py")
             for code in re.findall(r"\b(?:error|warning)\(\s*\"([a-z][a-z-]+)\"", path.read_text())}
    assert codes, "no diagnostic codes found: the pattern is stale"
    assert sorted(codes - headings) == []
