"""`eligib check --format html`, rendered by a real headless browser (Debian's chromium; `.ci/run` installs it).

The report is laid out at the width of an A4 page's printable area: nothing may stick out of it (cut off
in print), it prints to a PDF, and it holds what the text output with `-v` holds. The screenshot in
docs/ is made here: `pytest tests/test_html_report.py --update-golden` rewrites docs/check-report.png.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CD7, ROOT

from eligib.cli import main

EXAMPLES = ROOT / "protocols" / "examples"
SCREENSHOT = ROOT / "docs" / "check-report.png"
A4_PRINTABLE_PX = 703  # 210 mm less 2 x 12 mm margins, at 96 px per inch
MEASURE = """<script>
const width = window.innerWidth;
const outside = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > width + 0.5)
  .map(e => e.tagName + ':' + (e.textContent || '').slice(0, 40));
const overflowing = [...document.querySelectorAll('body *')].filter(e => e.scrollWidth > e.clientWidth + 1
  && getComputedStyle(e).overflowX !== 'visible').map(e => e.tagName);
document.body.setAttribute('data-outside', JSON.stringify(outside.concat(overflowing)));
</script>"""


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.fail("these tests need a headless chromium: `apt-get install chromium` (.ci/run does it)")
    return found


def run_browser(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--hide-scrollbars", f"--user-data-dir={cwd / 'profile'}", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


def report(example: str, *options: str) -> str:
    result = CliRunner().invoke(main, ["check", "--format", "html", *options, str(CD7), str(EXAMPLES / example)])
    assert result.exit_code in (0, 1, 3), result.output
    return result.output


@pytest.mark.parametrize("example", ["ineligible-alt.json", "undetermined-missing-several.json",
                                     "eligible-t-lbl-relapsed-after-transplant.json", "ineligible-recent-hsct.json"])
def test_nothing_sticks_out_of_an_a4_page(tmp_path: Path, example: str) -> None:
    page = tmp_path / "report.html"
    page.write_text(report(example).replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    result = run_browser(f"--window-size={A4_PRINTABLE_PX},1000", "--dump-dom", page.as_uri(), cwd=tmp_path)
    match = re.search(r'data-outside="([^"]*)"', result.stdout)
    assert match, result.stderr[-2000:]
    assert json.loads(match.group(1).replace("&quot;", '"')) == []


def test_it_prints_to_pdf_and_a_screenshot_is_in_the_docs(tmp_path: Path, update_golden: bool) -> None:
    page = tmp_path / "report.html"
    page.write_text(report("undetermined-missing-several.json"), encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    run_browser("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri(), cwd=tmp_path)
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", document)) >= 1
    shot = tmp_path / "report.png"
    run_browser("--window-size=794,1123", f"--screenshot={shot}", page.as_uri(), cwd=tmp_path)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
    if update_golden:
        shutil.copyfile(shot, SCREENSHOT)
    assert SCREENSHOT.read_bytes().startswith(b"\x89PNG")


def test_the_report_holds_what_the_verbose_text_holds() -> None:
    html = report("undetermined-missing-several.json")
    text = CliRunner().invoke(main, ["check", "-v", str(CD7), str(EXAMPLES / "undetermined-missing-several.json")])
    summary = text.output.splitlines()[0]
    assert f">{summary}</p>" in html
    for needle in ("eligible if lvef &gt;= 45 %", "Collect first:", "renal_function", "cockcroft_gault",
                   "Protocol SHA-256", "2026-12-02T00:00:00Z", "investigator_contraindication", "All criteria"):
        assert needle in html
    for external in ("<script", "src=", "href=", "url(", "@import"):  # self-contained: nothing to fetch
        assert external not in html
