"""report.html as a reader's browser shows it (headless Chromium): at 1400 and 800 px wide nothing runs off
the page's right edge outside a scroll box, every plot decodes, nothing comes from the network, no console
error, and the page opens with the verdict and the slowest interfaces.

Screenshots are kept in the test's tmp dir (pytest prints where with -s; the newest are under
/tmp/pytest-of-$USER/pytest-current/).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.report.chromium import chromium_binary, inspect_page
from tests.report.conftest import SyntheticRun
from twin import load_profile

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        chromium_binary() is None,
        reason="Debian's chromium is not installed (apt-get install -y chromium): the HTML render test needs it",
    ),
]
WIDTHS = (1400, 800)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real short run of the mini line against the embedded MES, reported with the default SLOs."""
    root = tmp_path_factory.mktemp("real")
    twin = [sys.executable, "-c", "from twin.cli import main; main()"]
    cmd = [*twin, "run", "mini", "--duration", "3m", "--speed", "30", "--slo", "default", "--reports", str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    (folder,) = root.glob("mini/*/report.html")
    return folder.parent


@pytest.mark.parametrize("width", WIDTHS)
def test_real_run_report_reads_at_1400_and_800_px(real_run: Path, tmp_path: Path, width: int) -> None:
    shot = tmp_path / f"report-{width}.png"
    page = inspect_page(real_run / "report.html", shot, width=width)
    assert page.errors == []
    assert width - 20 <= page.width <= width  # the viewport less its vertical scroll bar
    assert page.scroll_width <= page.width, (page.scroll_width, page.overflow)  # no sideways scrolling
    assert page.overflow == []
    plots = {p.stem for p in (real_run / "plots").glob("*.png")}
    assert {i["plot"] for i in page.images} == plots and len(page.images) == len(plots) >= 2
    assert all(i["complete"] and i["width"] >= 800 and i["height"] >= 200 for i in page.images), page.images
    before_tables = page.text.split("Slowest interfaces")[0]
    assert re.search(r"SLOs (NOT )?MET", before_tables.split("Is the MES fast enough")[0])  # the verdict first
    slowest = page.text.split("Slowest interfaces")[1].split("Failures by code")[0]
    rows = re.findall(r"^(\d+\.\d+)\t(\w+)\t(\S+)\t[\d,]+\t\S+ ms\t([\d.,]+) ms", slowest, re.M)
    assert len(rows) == 10, slowest  # section, operation and the spec's Chinese name, side by side, slowest first
    spec = load_profile("qingke-mes-v1")
    assert all((spec.operation(op).section, spec.operation(op).name_cn) == (sec, cn) for sec, op, cn, _ in rows)
    p99 = [float(v.replace(",", "")) for *_, v in rows]
    assert p99 == sorted(p99, reverse=True)
    assert "late start is an exchange sent more than 5 ms after its intended time" in page.text
    print(f"screenshot: {shot}")


def test_report_renders_with_every_plot_and_nothing_from_the_network(full_run: SyntheticRun, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    page = inspect_page(full_run.path / "report.html", shot, width=1400)
    assert page.errors == [] and page.overflow == []
    assert all(u.startswith(("file://", "data:")) for u in page.requests), page.requests
    plots = {p.stem for p in (full_run.path / "plots").glob("*.png")}
    assert {i["plot"] for i in page.images} == plots and len(page.images) == len(plots) == 6
    for image in page.images:
        assert image["complete"] and image["width"] >= 800 and image["height"] >= 200, image
    assert page.title.startswith("FAIL · mini/") and page.text.lstrip().startswith("MES load report")
    assert "SLOs NOT MET" in page.text.split("Is the MES fast enough")[0]  # the verdict comes before everything else
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_comparison_page_renders(full_run: SyntheticRun, tmp_path: Path) -> None:
    from twin.report import compare_runs
    from twin.report.compare import write_comparison

    page_path = write_comparison(compare_runs(full_run.path, full_run.path), full_run.path, full_run.path,
                                 tmp_path / "compare.html")  # fmt: skip
    page = inspect_page(page_path, tmp_path / "compare.png")
    assert page.errors == [] and len(page.images) == 1 and page.images[0]["width"] >= 800
    assert "NO REGRESSION" in page.text


def test_the_checker_sees_console_errors_broken_images_and_overflow(tmp_path: Path) -> None:
    """The same probe on a page that is wrong on purpose: the checks above can fail."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img data-plot="x" src="data:image/png;base64,AAAA">'
                   '<div style="overflow-x:auto"><table style="width:2000px"><tr><td>boxed</td></tr></table></div>'
                   '<table id="wide" style="width:1500px"><tr><td>wide</td></tr></table>'
                   "<script>console.error('boom')</script></body></html>")  # fmt: skip
    page = inspect_page(bad, tmp_path / "bad.png", width=800)
    assert any("boom" in e for e in page.errors)
    assert page.images == [{"plot": "x", "complete": True, "width": 0, "height": 0}]
    assert page.scroll_width > 800 and any(o.startswith("table#wide") for o in page.overflow)
    assert len(page.overflow) == 4  # the wide table and its body, row and cell; nothing of the boxed one
