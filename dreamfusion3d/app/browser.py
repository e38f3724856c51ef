"""Driving the app in Debian's headless Chromium through selenium (its test and screenshot script).

Nothing is downloaded: selenium is pointed at the system ``chromedriver`` rather than letting
selenium-manager fetch one, and the flags keep Chromium off the network it does not have.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Headless as root without network or GPU: no sandbox, software WebGL, and none of the
# background connections (updates, sync, QUIC) that a closed network refuses.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage")


def missing_tools() -> list[str]:
    """What the browser check lacks (empty when gradio, selenium, chromium and its driver are here)."""
    missing = []
    for module, hint in (("gradio", "pip install 'dreamfusion3d[app]'"), ("selenium", "pip install selenium")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{module} ({hint})")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            missing.append(f"{path} (apt-get install chromium chromium-driver)")
    return missing


def chrome(profile: Path, width: int = 1400, height: int = 1600):
    """A headless Chromium with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + (f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(args: list[str], log: Path, timeout: float, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """``dreamfusion3d app ARGS`` on 127.0.0.1 and a free port; returns once the page answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dreamfusion3d", "app", "--host", "127.0.0.1", "--port",
                                 str(port), *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"the app did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_app(proc: subprocess.Popen, timeout: float = 60) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


def canvas_pixels(driver, css: str) -> np.ndarray | None:
    """The pixels of the first canvas under ``css`` (None before it exists)."""
    from PIL import Image

    canvases = driver.find_elements("css selector", f"{css} canvas")
    if not canvases or not canvases[0].size["width"]:
        return None
    return np.asarray(Image.open(io.BytesIO(canvases[0].screenshot_as_png)).convert("RGB")).astype(np.float32)


def drawn(pixels: np.ndarray | None) -> bool:
    """A canvas shows something: colours vary (a blank one is a single flat colour)."""
    return (pixels is not None and float(pixels.std(axis=(0, 1)).max()) > 5.0
            and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20)
