"""ganvae explore in a real browser: headless Chromium driven by Selenium against the app served by uvicorn on
127.0.0.1. Screenshots go to $GANVAE_TEST_ARTIFACTS (default: the test's temporary folder).

Needs Debian's browser and driver: ``apt-get install chromium chromium-driver`` (``.ci/run`` installs them);
without them the test is skipped with that command.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import uvicorn_in_thread

pytest.importorskip("fastapi", reason="ganvae explore needs the explore extra: pip install -e '.[explore]'")
pytest.importorskip("selenium", reason="the browser test needs selenium: pip install -e '.[test]'")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="no browser here: apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def server():
    from ganvae.explore.server import build_explorer, create_app
    from ganvae.explore.session import Limits

    app = create_app(build_explorer(["mnist-vae", "mnist-cppn", "mnist-dcgan"],
                                    limits=Limits(max_render=512, max_invert_steps=20)))
    with uvicorn_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1900,1750"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("GANVAE_TEST_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_page_in_chromium(server, browser, artifacts):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # the page replaces images as they arrive: an element read mid-replacement is looked up again
    wait = WebDriverWait(browser, 120, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(server)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    assert browser.find_element(By.ID, "status").text == ""
    vae = browser.find_element(By.ID, "panel-0")
    first = lambda: vae.find_element(By.CSS_SELECTOR, ".grid img").get_attribute("src")  # noqa: E731
    before = first()

    # a new seed draws new samples
    seed = browser.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("5", Keys.TAB)
    wait.until(lambda d: first() != before)

    # a slider moves the selected digit along a main direction
    big = vae.find_element(By.CSS_SELECTOR, ".selected .big")
    wait.until(lambda d: big.get_attribute("src"))
    shown = big.get_attribute("src")
    slider = vae.find_element(By.CSS_SELECTOR, "input.dir")
    ActionChains(browser).click_and_hold(slider).move_by_offset(60, 0).release().perform()
    wait.until(lambda d: big.get_attribute("src") != shown)
    latency_ms = int(big.get_attribute("data-ms"))
    print(f"slider: image back in {latency_ms} ms")
    browser.save_screenshot(str(artifacts / "explore-slider.png"))

    # selecting a second sample shows the walk between them
    vae.find_elements(By.CSS_SELECTOR, ".grid img")[5].click()
    wait.until(lambda d: len(vae.find_elements(By.CSS_SELECTOR, ".strip img")) == 12)

    # draw a digit: the encoder model reconstructs it
    canvas = browser.find_element(By.ID, "canvas")
    ActionChains(browser).move_to_element_with_offset(canvas, 0, -90).click_and_hold() \
        .move_by_offset(0, 60).move_by_offset(0, 60).move_by_offset(0, 60).release().perform()
    browser.find_element(By.ID, "use-drawing").click()
    recon = vae.find_element(By.CSS_SELECTOR, ".recon")
    wait.until(lambda d: (recon.get_attribute("src") or "").startswith("data:image/png"))
    assert len(vae.find_elements(By.CSS_SELECTOR, ".nearest img")) == 4
    # ... and the GAN searches for a latent that draws it, showing its progress
    gan = browser.find_element(By.ID, "panel-2")
    found = gan.find_element(By.CSS_SELECTOR, ".recon")
    wait.until(lambda d: found.get_attribute("data-done") == "1")
    assert "inversion: step 20 / 20" in gan.find_element(By.CSS_SELECTOR, ".drawn-note").text

    # the cppn renders the selected latent at the largest size the limits allow (512x512 here, to keep it quick)
    cppn = browser.find_element(By.ID, "panel-1")
    Select(cppn.find_element(By.CSS_SELECTOR, ".render-size")).select_by_value("512")
    cppn.find_element(By.CSS_SELECTOR, ".render-btn").click()
    img = cppn.find_element(By.CSS_SELECTOR, ".render-img")
    wait.until(lambda d: d.execute_script("return arguments[0].naturalWidth", img) == 512)
    assert browser.find_element(By.ID, "status").text == ""
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(artifacts / "explore.png"))
