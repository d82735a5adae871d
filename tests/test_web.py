"""`ganpack web`: the folder it writes, its errors, and the page in a real headless browser
(Debian's chromium and chromium-driver, through selenium) against the Python runtime: latents
bit for bit, digits and the drawn canvas within one pixel level, the seed, digit and slider
controls. The browser tests are slow (a browser, a page load each); without the browser or
selenium they skip, saying what to install."""

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ganpack
import ganpack.model as model_module
from ganpack.archive import write_archive
from ganpack.cli import main
from ganpack.errors import run_command
from ganpack.grid import save_grid, tile
from ganpack.latents import GENERATOR
from ganpack.model import BUILT_IN
from ganpack.png import read_png

PAGE_FILES = ["ganpack.js", "index.html", "model.js", "page.js", "style.css"]
PAGE_LIMIT = 1 << 20  # bytes: the whole folder, weights included
BOUNDARY = 1e-5  # a pixel may differ by one level only where the float lies this close to a rounding boundary
MAX_DIFFERING = 0.001  # and at most this fraction of the pixels may
SEEDS = [0, 1, 2, 2**32 - 1, 2**32, 2**63 + 12345, 2**64 - 1]
slow = pytest.mark.slow


def copy_package(tmp_path, name, **latent):
    """The built-in default package, copied, its manifest's latent field changed."""
    folder = tmp_path / name
    shutil.copytree(BUILT_IN / "default", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["latent"].update(latent)
    if "generator" not in manifest["latent"] or manifest["latent"]["generator"] is None:
        manifest["latent"].pop("generator", None)
        manifest["format_version"] = 1  # a 0.1.0 package: numpy's PCG64 stream
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def page_model(folder):
    """model.js's object."""
    text = (folder / "model.js").read_text()
    return json.loads(re.search(r"window\.GANPACK_MODEL = (\{.*\});\n$", text, re.S).group(1))


# ---------------------------------------------------------------------------------------------
# the folder (quick: no browser)

@pytest.mark.parametrize("name", ["default", "conditional"])
def test_the_page_is_a_small_folder(tmp_path, capsys, name):
    out = tmp_path / "site" / "page"  # parents are made
    assert main(["web", name, str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == PAGE_FILES
    size = sum(path.stat().st_size for path in out.iterdir())
    assert size < PAGE_LIMIT
    assert capsys.readouterr().err == f"wrote {out} (5 files, {size / 1024:.0f} KB)\n"
    assert [path.name for path in out.parent.iterdir()] == ["page"]  # no partial folder left beside it
    model, page = ganpack.load(name), page_model(out)
    assert page["name"] == name and page["latent"]["generator"] == GENERATOR
    assert page["classes"] == (list(model.classes) if model.classes else None)
    widths = [page["layers"][0]["inputs"]] + [layer["outputs"] for layer in page["layers"]]
    assert widths == [100, *model.manifest.generator.layer_widths[1:]]  # without the one-hot columns
    weights = len(base64.b64decode(page["weights"])) // 4
    classes = len(model.classes) if model.classes else 1
    assert weights == sum(layer["inputs"] * layer["outputs"] for layer in page["layers"]) + sum(
        layer["outputs"] for layer in page["layers"][1:]) + classes * page["layers"][0]["outputs"]
    html = (out / "index.html").read_text()
    assert re.findall(r'<script src="([^"]+)"></script>', html) == ["model.js", "ganpack.js", "page.js"]
    assert "type=\"module\"" not in html and "fetch(" not in (out / "page.js").read_text()  # both fail over file://


def test_an_empty_folder_is_filled(tmp_path):
    (tmp_path / "page").mkdir()
    (tmp_path / "page").chmod(0o750)
    assert main(["web", "default", str(tmp_path / "page")]) == 0
    assert sorted(path.name for path in (tmp_path / "page").iterdir()) == PAGE_FILES
    assert (tmp_path / "page").stat().st_mode & 0o777 == 0o750  # the user's folder itself, kept


def test_a_zip_package_gives_the_same_page(tmp_path):
    archive = write_archive(BUILT_IN / "default", tmp_path / "digits.zip")
    assert main(["web", str(archive), str(tmp_path / "from-zip")]) == 0
    assert main(["web", "default", str(tmp_path / "from-name")]) == 0
    from_zip, from_name = page_model(tmp_path / "from-zip"), page_model(tmp_path / "from-name")
    assert from_zip["name"] == "digits" and from_name["name"] == "default"
    assert {**from_zip, "name": None} == {**from_name, "name": None}


def test_an_interrupted_fill_leaves_the_folder_empty(tmp_path, monkeypatch):
    """Ctrl-C during the third move into an existing empty folder: the two files moved are taken
    out again and no partial folder is left, so the rerun writes the page."""
    (tmp_path / "page").mkdir()
    calls, rename = [], Path.rename

    def interrupted(self, target):
        calls.append(target)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["web", "default", str(tmp_path / "page")])
    monkeypatch.undo()
    assert len(calls) == 3
    assert list((tmp_path / "page").iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["page"]
    assert main(["web", "default", str(tmp_path / "page")]) == 0
    assert sorted(path.name for path in (tmp_path / "page").iterdir()) == PAGE_FILES


@pytest.mark.parametrize("case", ["file parent", "file grandparent", "empty name"])
def test_the_output_location_is_checked_before_the_model_loads(tmp_path, capsys, monkeypatch, case):
    """A file where a folder of OUT_DIR's path must be is named, not "File exists" after the load."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.gpkc").write_text("mine")
    out, expected = {"file parent": ("d.gpkc/page", "'d.gpkc' is not a folder, so 'd.gpkc/page' cannot be made"),
                     "file grandparent": ("d.gpkc/site/page", "'d.gpkc' is not a folder"),
                     "empty name": ("", "the output folder is an empty name")}[case]
    monkeypatch.setattr(model_module, "load", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    status, err = mistake(tmp_path, capsys, ["default", out])
    assert status == 2 and err.startswith(f"error: {expected}") and err.count("\n") == 1, err
    assert [path.name for path in tmp_path.iterdir()] == ["d.gpkc"]


def test_the_command_line_imports_no_onnx():
    """cli imports ganpack.web for every command: it must stay light."""
    probe = ("import sys, ganpack.cli; ganpack.cli.parser(); assert 'ganpack.web' in sys.modules; "
             "print('onnx' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout == "False\n"


def mistake(tmp_path, capsys, argv):
    """`ganpack web ...` as the command runs it: its exit status and stderr."""
    with pytest.raises(SystemExit) as exit_:
        run_command(main, ["web", *argv])
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing package", "missing folder", "non-empty folder", "a file",
                                  "legacy stream"])
def test_mistakes_are_one_line_and_status_2(tmp_path, capsys, case):
    out = tmp_path / "out"
    package = "default"
    if case == "missing package":
        package = "no-such-model"
    elif case == "missing folder":
        package = str(tmp_path / "nowhere" / "model")
    elif case == "non-empty folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "a file":
        out.write_text("mine")
    else:
        package = str(copy_package(tmp_path, "legacy", generator=None))
    before = sorted(path.name for path in tmp_path.iterdir())
    status, err = mistake(tmp_path, capsys, [package, str(out)])
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    expected = {"missing package": "no-such-model", "missing folder": "is not a folder",
                "non-empty folder": "exists and is not empty", "a file": "exists and is not a folder",
                "legacy stream": "numpy-pcg64"}[case]
    assert expected in err
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing written, nothing left
    if case == "non-empty folder":
        assert [path.name for path in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


# ---------------------------------------------------------------------------------------------
# the page in a browser

@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through the Debian chromedriver; Selenium Manager (which would download a
    driver) is made to fail if anything calls it."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.selenium_manager import SeleniumManager
    except ImportError:
        pytest.skip("selenium is not installed (the test extra: pip install 'selenium>=4.20,<5')")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    missing = [package for package, path in (("chromium", chromium), ("chromium-driver", driver_path)) if not path]
    if missing:
        pytest.skip(f"no headless browser: install the Debian package(s) {' and '.join(missing)}")

    def refuse(*args, **kwargs):
        raise AssertionError("Selenium Manager was called: the tests never download a driver")

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400",
                     "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SeleniumManager, "binary_paths", refuse)
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """name -> (page folder, loaded model): the two built-in models, a uniform-latent package, and
    two untrained exports of other shapes (tests/packages.py)."""
    root = tmp_path_factory.mktemp("pages")
    uniform = copy_package(root, "uniform", distribution="uniform", parameters={"low": -1.0, "high": 1.0})
    made = {}
    from packages import make_package  # torch: only where the browser tests run

    exported = {name: str(make_package(root / name, name, seed=1)[0]) for name in ("three_layers", "alpha_0.2")}
    for name, package in (("default", "default"), ("conditional", "conditional"), ("uniform", str(uniform)),
                          *exported.items()):
        assert main(["web", package, str(root / f"{name}-page")]) == 0
        made[name] = (root / f"{name}-page", ganpack.load(package))
    return made


def open_page(driver, folder):
    """Open index.html from disk (file://, no server); the page must load without a console error."""
    driver.get((folder / "index.html").as_uri())
    assert driver.execute_script("return location.protocol") == "file:"
    assert driver.execute_script("return typeof window.ganpack") == "object"
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


def page_latents(driver, seed, n):
    return np.array(driver.execute_script(
        "return Array.from(new Uint32Array(window.ganpack.latents(arguments[0], arguments[1]).buffer))",
        str(seed), n), np.uint32)


def page_sample(driver, seed, n, label=None):
    encoded = driver.execute_script(
        "const pixels = window.ganpack.sample(arguments[0], arguments[1], arguments[2] ?? undefined);"
        "let text = '';"
        "for (let i = 0; i < pixels.length; i += 8192) text += String.fromCharCode(...pixels.subarray(i, i + 8192));"
        "return btoa(text);", str(seed), n, label)
    return np.frombuffer(base64.b64decode(encoded), np.uint8).reshape(n, 28, 28)


def canvas(driver, element_id):
    """A canvas's pixels as the page drew them (toDataURL, read back): (H, W) gray levels."""
    from PIL import Image

    url = driver.execute_script("return document.getElementById(arguments[0]).toDataURL('image/png')", element_id)
    return gray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def gray(image):
    rgba = np.asarray(image.convert("RGBA"))
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all() and (rgba[..., 3] == 255).all()
    return rgba[..., 0]


def python_grid(tmp_path, images, columns=0, scale=2):
    """What save_grid writes for these digits: (H, W) uint8."""
    if scale == 2:
        return read_png(save_grid(images, tmp_path / "python-grid.png", columns=columns))
    return np.repeat(np.repeat(tile(images, columns), scale, axis=0), scale, axis=1)


def assert_within_one_level(page, model, seed, label=None, what=""):
    """page (n, 28, 28) uint8 against model.sample(n, seed): at most one level apart, only where
    Python's float lies within BOUNDARY of a rounding boundary, at most MAX_DIFFERING of the pixels.
    Returns how many differ."""
    n = len(page)
    expected = model.sample(n, seed, label=label)
    floats = model.sample(n, seed, output="float", label=label).astype(np.float64)
    differ = page != expected
    assert np.abs(page.astype(int) - expected).max(initial=0) <= 1, what
    nearest = (np.floor((floats + 1) * 127.5) + 0.5) / 127.5 - 1  # the boundary between the two levels
    assert (np.abs(floats - nearest)[differ] <= BOUNDARY).all(), what
    print(f"{what}: {differ.sum()} of {differ.size} pixels differ by one level")
    assert differ.sum() <= MAX_DIFFERING * differ.size, what
    return int(differ.sum())


@slow
@pytest.mark.parametrize("name", ["default", "uniform"])
def test_latents_are_python_s_bit_for_bit(browser, pages, name):
    folder, model = pages[name]
    open_page(browser, folder)
    for seed in SEEDS:
        assert np.array_equal(page_latents(browser, seed, 64), model.latents(64, seed).view(np.uint32).ravel()), seed
    assert np.array_equal(page_latents(browser, 7, 1000), model.latents(1000, 7).view(np.uint32).ravel())


@slow
def test_digits_match_python_within_one_level(browser, pages):
    folder, model = pages["default"]
    open_page(browser, folder)
    for seed in (1, 2**64 - 1):
        assert_within_one_level(page_sample(browser, seed, 64), model, seed, what=f"default, seed {seed}")
    assert np.array_equal(page_sample(browser, 1, 5), page_sample(browser, 1, 64)[:5])  # rows do not depend on n
    folder, model = pages["conditional"]
    open_page(browser, folder)
    for label in range(len(model.classes)):
        assert_within_one_level(page_sample(browser, 1, 64, label), model, 1, label, f"conditional, label {label}")


@slow
@pytest.mark.parametrize("name", ["three_layers", "alpha_0.2"])
def test_other_stacks_match_python_within_one_level(browser, pages, name):
    folder, model = pages[name]
    open_page(browser, folder)
    assert_within_one_level(page_sample(browser, 3, 64), model, 3, what=name)


@slow
def test_the_drawn_grid_is_python_s_grid(browser, pages, tmp_path):
    folder, model = pages["default"]
    open_page(browser, folder)
    from PIL import Image

    element = browser.find_element("id", "grid")
    shot = gray(Image.open(io.BytesIO(element.screenshot_as_png)))  # what the screen shows
    expected = python_grid(tmp_path, model.sample(64, 1))
    assert shot.shape == expected.shape == (484, 484)
    assert np.abs(shot.astype(int) - expected).max() <= 1
    assert np.array_equal(canvas(browser, "grid"), shot)


@slow
def test_new_seed_draws_that_seed_s_grid(browser, pages, tmp_path):
    folder, model = pages["default"]
    open_page(browser, folder)
    before = canvas(browser, "grid")
    browser.find_element("id", "new-seed").click()
    seed = browser.find_element("id", "seed").get_attribute("value")
    assert seed != "1" and 0 <= int(seed) < 2**64
    after = canvas(browser, "grid")
    assert not np.array_equal(before, after)
    assert np.abs(after.astype(int) - python_grid(tmp_path, model.sample(64, int(seed)))).max() <= 1
    assert re.fullmatch(r"64 digits in \d+\.\d ms", browser.find_element("id", "timing").text)
    field = browser.find_element("id", "seed")
    field.clear()
    field.send_keys("12x")  # drawn as it is typed: seeds 1 and 12, then not a seed: said so, the grid greyed
    assert "seed must be a whole number" in browser.find_element("id", "error").text
    assert field.get_attribute("aria-invalid") == "true"
    assert_stale(browser, ["grid"]) and browser.find_element("id", "timing").text == ""


@slow
def test_the_digit_picker_changes_the_class(browser, pages, tmp_path):
    from selenium.webdriver.support.select import Select

    folder, model = pages["conditional"]
    open_page(browser, folder)
    picker = Select(browser.find_element("id", "label"))
    assert [option.text for option in picker.options] == list(model.classes)
    grids = {}
    for label in (0, 7):
        picker.select_by_value(str(label))
        grids[label] = canvas(browser, "grid")
        expected = python_grid(tmp_path, model.sample(64, 1, label=label))
        assert np.abs(grids[label].astype(int) - expected).max() <= 1
    assert not np.array_equal(grids[0], grids[7])
    assert not browser.find_element("id", "label-picker").get_attribute("hidden")
    open_page(browser, pages["default"][0])
    assert browser.find_element("id", "label-picker").get_attribute("hidden")  # unconditional: no picker


@slow
@pytest.mark.parametrize("name", ["default", "conditional"])
def test_the_slider_walks_between_two_latents(browser, pages, tmp_path, name):
    from selenium.webdriver.common.keys import Keys

    folder, model = pages[name]
    open_page(browser, folder)
    labels = None if model.classes is None else np.full(10, 0)
    z_a, z_b = model.latents(1, 1), model.latents(1, 2)  # seeds A and B: the page's 1 and 2
    slider = browser.find_element("id", "t")
    digits = {}
    for key, t in ((Keys.END, "1.00"), (Keys.HOME, "0.00"), (Keys.PAGE_UP, None)):
        slider.send_keys(key)
        digits[key] = canvas(browser, "walk-digit")
        if t is not None:
            assert browser.find_element("id", "t-value").text == t
    for key, z in ((Keys.HOME, z_a), (Keys.END, z_b)):  # the ends are generate(z_A) and generate(z_B)
        expected = python_grid(tmp_path, model.generate(z, labels=None if labels is None else labels[:1]), 1, 4)
        assert np.abs(digits[key].astype(int) - expected).max() <= 1
    assert not np.array_equal(digits[Keys.PAGE_UP], digits[Keys.HOME])
    # the strip is `ganpack interpolate --seeds 1 2 --steps 10`
    weights = np.linspace(0.0, 1.0, 10, dtype=np.float32)[:, None]
    walk = model.generate((1 - weights) * z_a + weights * z_b, labels=labels)
    assert np.abs(canvas(browser, "walk-strip").astype(int) - python_grid(tmp_path, walk, 10)).max() <= 1


def assert_stale(driver, ids, stale=True):
    """The canvases greyed out (class "stale", mostly transparent) while a field holds no seed, or not."""
    for element_id in ids:
        state = driver.execute_script(
            "const element = document.getElementById(arguments[0]);"
            "return [element.classList.contains('stale'), Number(getComputedStyle(element).opacity)]", element_id)
        assert state == ([True, 0.2] if stale else [False, 1]), (element_id, state)
    return True


@slow
def test_an_invalid_seed_greys_the_grid_and_names_the_field(browser, pages, tmp_path):
    folder, model = pages["default"]
    open_page(browser, folder)
    field, error, timing = (browser.find_element("id", name) for name in ("seed", "error", "timing"))
    for text in ("abc", "-1", "1e3", "1.0", "+5", "", str(2**64), "7" * 101):
        browser.execute_script("const f = document.getElementById('seed'); f.value = arguments[0];"
                               "f.dispatchEvent(new Event('input'))", text)
        expected = "at most 100 characters; got 101" if len(text) > 100 else f"got '{text}'"
        assert error.text.startswith("seed must be a whole number from 0 to 18446744073709551615"), text
        assert expected in error.text and field.get_attribute("aria-invalid") == "true", (text, error.text)
        assert_stale(browser, ["grid"]) and timing.text == ""
        assert browser.execute_script("return window.ganpack.draw()") is None
    field.clear()
    field.send_keys("3")
    assert error.text == "" and field.get_attribute("aria-invalid") is None
    assert_stale(browser, ["grid"], stale=False) and re.fullmatch(r"64 digits in \d+\.\d ms", timing.text)
    assert np.abs(canvas(browser, "grid").astype(int) - python_grid(tmp_path, model.sample(64, 3))).max() <= 1
    # the walk: both fields invalid, both named
    for field_id, text in (("seed-a", "abc"), ("seed-b", "-1")):
        field = browser.find_element("id", field_id)
        field.clear()
        field.send_keys(text)
    lines = browser.find_element("id", "walk-error").text.splitlines()
    assert [line.split(" must be")[0] for line in lines] == ["seed A", "seed B"], lines
    assert lines[0].endswith("got 'abc'") and lines[1].endswith("got '-1'")
    assert_stale(browser, ["walk-digit", "walk-strip"])
    browser.find_element("id", "seed-a").clear()
    browser.find_element("id", "seed-a").send_keys("1")
    assert browser.find_element("id", "walk-error").text.startswith("seed B must be")
    browser.find_element("id", "seed-b").clear()
    browser.find_element("id", "seed-b").send_keys("2")
    assert browser.find_element("id", "walk-error").text == ""
    assert_stale(browser, ["walk-digit", "walk-strip"], stale=False)


@slow
def test_leading_zeros_are_the_same_seed(browser, pages, tmp_path):
    """As `ganpack sample --seed 0001` (Python's int()) reads them."""
    folder, model = pages["default"]
    open_page(browser, folder)
    one = page_sample(browser, 1, 8)
    assert np.array_equal(page_sample(browser, "00000000000000000000001", 8), one)
    assert np.array_equal(page_sample(browser, "0" * 99 + "1", 8), one)  # 100 characters
    assert np.array_equal(page_latents(browser, "0" * 30 + str(2**64 - 1), 2), page_latents(browser, 2**64 - 1, 2))
    field = browser.find_element("id", "seed")
    field.clear()
    field.send_keys("000012")
    assert browser.find_element("id", "error").text == ""
    assert np.abs(canvas(browser, "grid").astype(int) - python_grid(tmp_path, model.sample(64, 12))).max() <= 1


def api_error(driver, call, *arguments):
    """The message of the Error a window.ganpack call throws (None if it returns)."""
    return driver.execute_script(f"try {{ window.ganpack.{call}; return null; }} catch (error) {{ "
                                 "return `${error.name}: ${error.message}`; }", *arguments)


@slow
def test_the_api_refuses_bad_arguments_by_name(browser, pages):
    open_page(browser, pages["default"][0])
    for call in ("sample", "latents"):
        assert api_error(browser, f"{call}('1', 1.5)") == "Error: n must be a whole number from 0 up, got 1.5"
        assert api_error(browser, f"{call}('1', -1)") == "Error: n must be a whole number from 0 up, got -1"
        assert api_error(browser, f"{call}('1', '2')") == "Error: n must be a whole number from 0 up, got '2'"
        assert api_error(browser, f"{call}('1', 0)") is None
        assert api_error(browser, f"{call}('abc', 1)").startswith("Error: seed must be a whole number")
    assert api_error(browser, "sample('1', 1, 3)") == ("Error: label: this model is unconditional "
                                                       "(it has no classes), got 3")
    assert api_error(browser, "sample('1', 1)") is None and api_error(browser, "sample('1', 1, null)") is None
    open_page(browser, pages["conditional"][0])
    expected = "Error: label must be a class index from 0 to 9 (this model is class-conditional), got "
    for label, shown in (("undefined", "undefined"), ("10", "10"), ("-1", "-1"), ("1.5", "1.5")):
        assert api_error(browser, f"sample('1', 1, {label})") == expected + shown
    assert api_error(browser, "sample('1', 1, 9)") is None
