"""benchmarks/RESULTS.md and README.md's results table are what benchmarks/report.py renders from the JSON results."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def test_results_page_and_readme_table_are_up_to_date():
    proc = subprocess.run([sys.executable, str(BENCH / "report.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_results_file_is_rendered():
    sys.path.insert(0, str(BENCH))
    try:
        import report
    finally:
        sys.path.remove(str(BENCH))
    rendered = {name for section in report.sections() for name in section.files}
    on_disk = {p.stem for p in (BENCH / "results").glob("*.json")}
    assert on_disk - rendered == set(), "results without a section in benchmarks/report.py"
    page = (BENCH / "RESULTS.md").read_text()
    for name in on_disk:
        assert f"`{name}.json`" in page, name


def test_readme_links_the_results_page():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("<!-- results:begin -->"):readme.index("<!-- results:end -->")]
    assert "](benchmarks/RESULTS.md)" in block and block.count("\n|") >= 3
