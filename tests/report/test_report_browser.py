"""report.html as a person sees it: rendered by headless Chromium (Debian's ``chromium``; `.ci/run` installs it).

A copy of the page gets a probe script that measures, after layout in a 1280 x 800 px window, where the scorecard is and
whether every figure decoded and has a visible size; Chromium's ``--dump-dom`` returns the probe's answer. The page
itself has no script. Without Chromium the test is skipped on a workstation and fails under CI.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from beyond_imagenet.report import write_report
from report.synthetic_tables import full_rows, inputs, table, tiny_png

pytestmark = pytest.mark.slow
WIDTH, HEIGHT = 1280, 800
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
    "--disable-background-networking", "--disable-component-update", "--hide-scrollbars",
    f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=5000",
)  # fmt: skip
PROBE = """
<pre id="probe"></pre><script>
const seen = e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
  return {top: r.top, bottom: r.bottom, width: r.width, height: r.height,
          shown: s.display !== 'none' && s.visibility !== 'hidden' && s.opacity !== '0'}; };
const card = document.getElementById('scorecard');
document.getElementById('probe').textContent = JSON.stringify({
  viewport: [innerWidth, innerHeight],
  scorecard: card ? {...seen(card), rows: card.tBodies[0].rows.length} : null,
  figures: [...document.images].map(i => ({source: i.dataset.source || i.alt, decoded: i.complete && i.naturalWidth > 0,
    caption: (i.closest('figure')?.querySelector('figcaption')?.textContent || ''), ...seen(i)})),
});
</script>
"""


def chromium() -> str:
    """The Chromium binary; skips (fails under CI) when there is none."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("no chromium on PATH: .ci/run installs Debian's chromium package")
    pytest.skip("headless Chromium not installed (apt-get install chromium)")


def probe(page: Path, tmp_path: Path) -> dict:
    """The probe's measurements of ``page`` rendered by headless Chromium."""
    copy = page.with_name("probed.html")
    copy.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    profile = tmp_path / "chromium-profile"
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", copy.as_uri()]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', out, flags=re.S)
    assert found and found[1], f"the probe did not run; Chromium printed: {out[:500]}"
    return json.loads(html.unescape(found[1]))


def test_the_first_screen_holds_the_scorecard_and_every_figure_is_visible(tmp_path):
    results_dir = tmp_path / "results"
    figures = [
        results_dir / "figures/calibration/imagenet_val/all_models.png",
        results_dir / "figures/calibration/imagenet_val/vit_sup.png",
        results_dir / "figures/calibration/imagenet_val/convnext_sup.png",
        results_dir / "cka/figures/imagenet_val/all_models.png",
        results_dir / "vtab/figures/fig6_bottom.png",
    ]
    for i, path in enumerate(figures):
        tiny_png(path, (0.2 * i, 0.3, 0.5))
    models = ("vit_sup", "convnext_sup", "vit_clip", "convnext_clip")
    results = table([r for i, m in enumerate(models) for r in full_rows(m, 50.0 + i)])
    page = write_report(inputs(results, results_dir), tmp_path / "reports")[0]
    seen = probe(page, tmp_path)
    width, height = seen["viewport"]  # a 1280 x 800 window: about 660 px of page below the browser's bars
    assert width == WIDTH and 600 <= height <= HEIGHT
    card = seen["scorecard"]
    assert card["shown"] and card["rows"] == 15
    assert card["top"] >= 0 and card["bottom"] <= height, f"scorecard not within the first screen: {card}"
    assert card["width"] > 600
    sources = {f["source"] for f in seen["figures"]}
    assert {str(p) for p in figures} <= sources
    assert any(s.endswith("summary.png") for s in sources)  # the Fig. 1-style chart
    for figure in seen["figures"]:
        assert figure["decoded"] and figure["shown"], figure
        assert figure["width"] >= 50 and figure["height"] >= 30, figure
        assert figure["caption"].strip(), figure
