"""The committed sample PDFs are exactly what scripts/make_sample_pdf.py produces (deterministic build)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pdfs_rebuild_byte_identical(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_pdf.py"), "--out-dir", str(tmp_path)],
                   check=True, capture_output=True)
    built = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.pdf"))
    assert built
    for rel in built:
        assert (tmp_path / rel).read_bytes() == (ROOT / "corpora" / "beacon" / rel).read_bytes(), rel
