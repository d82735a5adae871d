"""How fast the page `ganpack web` writes draws 64 digits in a browser, next to Python's sample.

    python benchmarks/web_bench.py [--models default,conditional] [--draws 20] [--seed 1]

For each model: the page is written (ganpack.web.write_page) into a temporary folder and opened
from disk (file://) in headless Chromium, Debian's chromium and chromium-driver driven by
selenium (never a downloaded driver). Inside the page, window.ganpack.draw() is timed with
performance.now (the latents, the generator and the canvas: what the "new seed" button does),
--draws times after three warm-up draws; the first draw, at page load, is reported as well.
Beside it: model.sample(64, seed) in Python (the backend ganpack picks, C when it is built),
timed the same way. Prints the CPU, the page's size, and median and best of each.
"""

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ganpack  # noqa: E402
from ganpack.errors import ArgumentParser  # noqa: E402  one line per mistake, status 2
from ganpack.web import write_page  # noqa: E402
from machine import cpu_info  # noqa: E402

DIGITS = 64  # the page's grid
WARM_UP = 3


def browser():
    """Headless Chromium through the chromedriver on PATH; an explicit driver path means Selenium
    Manager is never asked for one."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        sys.exit("web_bench.py: selenium is not installed (pip install 'selenium>=4.20,<5')")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        sys.exit("web_bench.py: needs the Debian packages chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def page_times(driver, page: Path, seed: int, draws: int) -> tuple[float, list[float]]:
    """(the first draw at page load, then `draws` timed draws), in milliseconds."""
    driver.get((page / "index.html").as_uri())
    first = driver.execute_script("return window.ganpack.lastDrawMs")
    times = driver.execute_script(
        "const field = document.getElementById('seed'); field.value = arguments[0];"
        "for (let i = 0; i < arguments[1]; i++) window.ganpack.draw();"
        "const times = []; for (let i = 0; i < arguments[2]; i++) times.push(window.ganpack.draw());"
        "return times;", str(seed), WARM_UP, draws)
    return first, times


def python_times(model: ganpack.Model, seed: int, draws: int, label: int | None) -> list[float]:
    for _ in range(WARM_UP):
        model.sample(DIGITS, seed, label=label)
    times = []
    for _ in range(draws):
        start = time.perf_counter()
        model.sample(DIGITS, seed, label=label)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="web_bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default,conditional", help="packages (names or folders), comma-separated")
    parser.add_argument("--draws", type=int, default=20, help="timed draws of 64 digits per model")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws must be at least 1, got {args.draws}")
    cpu = cpu_info()
    print(f"CPU: {cpu['model']} ({cpu['cores']} cores available)")
    driver = browser()
    print(f"browser: {driver.capabilities.get('browserName')} {driver.capabilities.get('browserVersion')}, headless\n")
    print("| model | page KB | browser first draw ms | browser median ms | browser best ms "
          "| Python sample median ms | Python best ms | backend |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    try:
        with tempfile.TemporaryDirectory() as folder:
            for name in args.models.split(","):
                page = write_page(name, Path(folder) / f"page-{len(list(Path(folder).iterdir()))}")
                size = sum(path.stat().st_size for path in page.iterdir()) / 1024
                first, times = page_times(driver, page, args.seed, args.draws)
                model = ganpack.load(name)
                label = 0 if model.classes else None  # the page's picker starts at the first class
                python = python_times(model, args.seed, args.draws, label)
                print(f"| {name} | {size:.0f} | {first:.1f} | {statistics.median(times):.1f} | {min(times):.1f} "
                      f"| {statistics.median(python):.2f} | {min(python):.2f} | {model.backend} |")
    finally:
        driver.quit()
    print(f"\n{DIGITS} digits a draw: latents, generator and canvas in the page (performance.now); "
          f"model.sample({DIGITS}, seed) in Python; {args.draws} draws after {WARM_UP} warm-up draws each.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
