"""Open report.html in a real browser (headless Chromium): no console errors, every figure decodes.

A copy of the report gets a small probe script (errors + each <img>'s naturalWidth written into the DOM);
``--dump-dom`` then prints the DOM after load. Skipped with a message where Chromium is not installed
(Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_factory import make_report_cohort, make_run

from fusemed.report import build_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push('error: ' + (e.message || (e.target && (e.target.src || e.target.href)) || 'resource'));
}, true);
(function () { var orig = console.error; console.error = function () {
  window.__errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); orig.apply(console, arguments);
}; })();
</script>"""

PROBE_BODY = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (img) {
    return {figure: img.getAttribute('data-figure'), ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth};
  });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({errors: window.__errors, images: imgs});
  document.body.appendChild(pre);
});
</script>"""


def chromium_flags(user_data: Path) -> list[str]:
    return [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={user_data}"]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install -y chromium)")
def test_report_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    cohort = make_report_cohort(tmp_path / "cohort", n=60)
    runs = [make_run(tmp_path / "runs" / "early", cohort, "early", noise=2.0, uncertainty=False),
            make_run(tmp_path / "runs" / "hemis", cohort, "hemis", noise=0.5, seed=1)]
    html = build_report(runs, tmp_path / "report.html", n_boot=200).read_text()
    n_figures = html.count("data-figure=")
    assert n_figures >= 7
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_BODY + "</body>", 1))
    proc = subprocess.run([*chromium_flags(tmp_path / "profile"), "--virtual-time-budget=10000", "--dump-dom",
                           probed.as_uri()], capture_output=True, text=True, timeout=90)
    match = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"probe did not run; chromium stderr tail:\n{proc.stderr[-2000:]}"
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    assert len(result["images"]) == n_figures
    broken = [img["figure"] for img in result["images"] if not img["ok"]]
    assert broken == [], f"figures that did not load: {broken}"
