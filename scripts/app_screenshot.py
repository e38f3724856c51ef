"""Screenshot of the finished text → 3D tab, and the time from submit to the first preview.

Starts ``dreamfusion3d app`` (default preset unless --presets), submits a prompt in headless
Chromium, times the first progress preview (in the page, and from the job record to the PNG's
mtime on disk), waits for the run to finish and the viewer to draw, then saves the page.

    python3 scripts/app_screenshot.py --prompt "a purple torus" --out docs/app_screenshot.png
    python3 scripts/app_screenshot.py --reopen outputs/red-cube     # a finished CLI run, from the history
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from selenium.webdriver.support.ui import WebDriverWait

from dreamfusion3d.app.browser import canvas_pixels, chrome, drawn, start_app, stop_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="a purple torus")
    parser.add_argument("--out", type=Path, default=Path("docs/app_screenshot.png"))
    parser.add_argument("--runs", type=Path, default=None, help="the app's runs folder (default: a temp folder)")
    parser.add_argument("--app-args", nargs="*", default=[], help="more `dreamfusion3d app` flags")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--reopen", type=Path, default=None, help="a finished generate run: copy it into the "
                        "runs folder and open it from the history instead of submitting (no timings)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="app-shot-"))
    runs = args.runs or work / "runs"
    if args.reopen is not None:
        shutil.copytree(args.reopen, runs / args.reopen.name)
    proc, url = start_app(["--runs", str(runs), *args.app_args], work / "app.log", 900)
    driver = chrome(work / "profile", 1400, 1500)
    wait = WebDriverWait(driver, args.timeout, poll_frequency=0.2)
    try:
        driver.get(url)
        box = wait.until(lambda d: d.find_elements("css selector", "#t2d-prompt textarea"))[0]
        t0 = time.time()
        if args.reopen is not None:
            driver.find_element("css selector", "#t2d-history input").click()
            wait.until(lambda d: d.find_elements("css selector", "#t2d-history li[role=option]"))[0].click()
        else:
            box.send_keys(args.prompt)
            driver.find_element("id", "t2d-submit").click()
        wait.until(lambda d: d.find_elements("css selector", "#t2d-gallery img"))
        in_page = time.time() - t0
        wait.until(lambda d: "Done" in d.find_element("id", "t2d-progress").text)
        total = time.time() - t0
        wait.until(lambda d: drawn(canvas_pixels(d, "#t2d-viewer")))
        time.sleep(1.0)  # let the viewer finish its fade-in before the picture (not an assertion)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(int(height) + 40, 2400))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
        stop_app(proc)
    if args.reopen is not None:
        print(json.dumps({"reopened": str(args.reopen), "screenshot": str(args.out)}))
        return
    [record] = sorted((runs / ".app" / "jobs").glob("*.json"))
    job = json.loads(record.read_text())
    first_png = sorted((runs / job["id"] / "progress").glob("step_*.png"))[0]
    print(json.dumps({
        "prompt": args.prompt, "run": str(runs / job["id"]),
        "submit_to_first_preview_in_page_s": round(in_page, 2),
        "job_submitted_to_first_preview_png_s": round(first_png.stat().st_mtime - job["submitted"], 2),
        "first_preview": first_png.name, "submit_to_done_in_page_s": round(total, 1), "screenshot": str(args.out),
    }, indent=2))


if __name__ == "__main__":
    main()
