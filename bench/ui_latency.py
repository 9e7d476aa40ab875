"""Click-to-result latency in a real browser: p50/p99 over N clicks of Predict, iris and cancer.

Starts the app on fresh stores (or --data-dir with models already there), waits until every
model is loaded, logs in as the seeded admin and clicks the page's predict button N times.
Each click is timed inside the page: from the click event to the DOM mutation that shows
the new answer time in the result caption (every answer carries its own time, so each
click changes the page).

    .venv/bin/python bench/ui_latency.py [--clicks 50] [--runs 3] [--data-dir DIR]

Prints a table per run and ends with one JSON line. Target: p99 < 300 ms.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.studio_server import StudioServer, launch_browser, log_in, wait_models_loaded  # noqa: E402

BAYES = {"BAYES_WARMUP": "400", "BAYES_SAMPLES": "600"}

# Timestamps in the page: the click on the predict button, and the mutation that changes
# the caption holding the answer time.
PROBE_JS = """
(buttonLabel) => {
  window.__clicks = []; window.__results = [];
  const caption = () => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]
      .map(e => e.textContent).find(t => t.includes('answered at')) || '';
  window.__last = caption();
  document.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (b && b.textContent.trim() === buttonLabel) window.__clicks.push(performance.now());
  }, true);
  new MutationObserver(() => {
    const now = caption();
    if (now && now !== window.__last) { window.__last = now; window.__results.push(performance.now()); }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def clicks(page, link: str, button: str, n: int) -> list[float]:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link).click()
    page.get_by_role("button", name=button).wait_for()
    page.get_by_role("button", name=button).click()  # warm-up: first answer, charts loaded
    page.get_by_text("answered at").first.wait_for()
    page.wait_for_timeout(500)
    page.evaluate(PROBE_JS, button)
    for i in range(n):
        page.get_by_role("button", name=button).click()
        page.wait_for_function(f"window.__results.length >= {i + 1}", timeout=30_000)
        page.wait_for_timeout(50)
    starts = page.evaluate("window.__clicks")
    ends = page.evaluate("window.__results")
    return [end - start for start, end in zip(starts, ends)]


def one_run(data_dir: Path, n: int, fresh: bool, post_script_gc: bool) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    server = StudioServer(
        data_dir, env_overrides=BAYES, prepare=fresh, extra_args=("--runner.postScriptGC", str(post_script_gc).lower())
    )
    with server, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        log_in(page, server.url)
        wait_models_loaded(page, server)
        out = {}
        for name, link, button in (("iris", "Iris species", "Predict species"), ("cancer", "Breast cancer", "Estimate probability")):
            ms = clicks(page, link, button, n)
            out[name] = {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms)}
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=None, help="stores to reuse (default: fresh, trained on the first run)")
    parser.add_argument(
        "--post-script-gc", choices=("true", "false"), default="false",
        help="Streamlit's runner.postScriptGC (its default is true; we recommend false)",
    )
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="cms-bench-ui-"))
    runs = []
    for r in range(args.runs):
        fresh = args.data_dir is None and r == 0
        result = one_run(data_dir, args.clicks, fresh, args.post_script_gc == "true")
        runs.append(result)
        for page_name, stats in result.items():
            print(f"run {r + 1} {page_name:6s} n={stats['n']:3d}  p50 {stats['p50_ms']:7.1f} ms  p99 {stats['p99_ms']:7.1f} ms  max {stats['max_ms']:7.1f} ms")
    summary = {"bench": "ui_latency", "clicks": args.clicks, "runs": args.runs, "post_script_gc": args.post_script_gc == "true"}
    for page_name in ("iris", "cancer"):
        for stat in ("p50_ms", "p99_ms"):
            summary[f"{page_name}_{stat}_median"] = round(statistics.median(r[page_name][stat] for r in runs), 1)
    summary["target_p99_ms"] = 300
    summary["meets_target"] = all(summary[f"{p}_p99_ms_median"] < 300 for p in ("iris", "cancer"))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
