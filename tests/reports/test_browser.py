"""The pages in a real headless browser (Debian Chromium driven by Playwright), served by the real
service over HTTP through signed links.

For each CAC-DRS category and a MESA-not-applicable case: the summary, the picture and the
patient's point are on screen, nothing is requested from elsewhere, the console stays clean, the
page reflows at 320 CSS px (200 % zoom of a 640 px window) and prints, and axe-core finds no
serious or critical accessibility violation. Screenshots and axe results are kept under
``test-artifacts/reports/``. The clinician report of a chest phantom is loaded too, with its key
images.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)
from werkzeug.serving import BaseWSGIServer, make_server

from fhir_service.app import create_app
from fhir_service.settings import Settings
from interpretation import MesaRace, PatientContext, Sex, interpret
from phantom.chest import ChestPhantomConfig, PlaqueSpec, chest_phantom
from reports.bundle import ReportArtefacts, render_report_bundle
from reports.links import PageKind, sign_page_token
from reports.patient_page import render_patient_page
from reports.store import ReportStore
from reports.study import StudyIdentification
from scoring import Artery, find_candidates, score_candidates
from scoring.coronary.detect import detect_coronary_calcium
from tests.reports.conftest import context_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = "/usr/bin/chromium"
#: Flags from reference/peers.md (root needs --no-sandbox).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--log-level=3",
]
SECRET = b"browser-test-secret-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
ARTEFACTS = ROOT / "test-artifacts" / "reports"
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"

#: name -> (Agatston, patient context): one per CAC-DRS category, then MESA not applicable.
CASES: dict[str, tuple[float, PatientContext]] = {
    "cac-0": (0.0, context_for(age=58, sex=Sex.MALE, race=MesaRace.WHITE)),
    "cac-1-99": (42.0, context_for(age=62, sex=Sex.FEMALE, race=MesaRace.BLACK)),
    "cac-100-299": (150.0, context_for(age=66, sex=Sex.MALE, race=MesaRace.HISPANIC)),
    "cac-300-plus": (620.0, context_for(age=71, sex=Sex.FEMALE, race=MesaRace.CHINESE)),
    "mesa-not-applicable": (
        150.0,
        context_for(age=60, sex=Sex.MALE, race=None, race_detail="Asian (not Chinese)"),
    ),
}
IDENTIFICATION = StudyIdentification(
    patient_name="Sam Example", study_date=datetime.date(2026, 11, 20), patient_id="MRN-7"
)


@dataclass
class Served:
    """The running service and the signed links to its stored pages."""

    base_url: str
    links: dict[str, str] = field(default_factory=dict)
    phantom: ReportArtefacts | None = None


def _phantom_bundle() -> ReportArtefacts:
    """A chest phantom with calcium in every artery and distractors, labelled automatically."""
    config = ChestPhantomConfig(
        seed=3,
        matrix_size=256,
        pixel_spacing_mm=0.7,
        plaques=(
            PlaqueSpec(Artery.LM, 0.5, 1.5, 600),
            PlaqueSpec(Artery.LAD, 0.3, 1.8, 700, 2.0),
            PlaqueSpec(Artery.LCX, 0.4, 1.5, 500),
            PlaqueSpec(Artery.RCA, 0.35, 2.0, 800, 2.0),
        ),
        aortic_wall_calcs=2,
        mitral_annulus_calcs=1,
        cartilage_calcs=1,
    )
    study = chest_phantom(config)
    candidates = find_candidates(study.volume)
    labelling = detect_coronary_calcium(study.volume, candidates)
    score = score_candidates(candidates, labelling.labels, roi="auto")
    context = context_for(age=64, sex=Sex.MALE, race=MesaRace.WHITE)
    interpretation = interpret(score.agatston, context, by_artery=dict(score.agatston_by_artery))
    return render_report_bundle(
        study.volume, candidates, score, interpretation, context, IDENTIFICATION
    )


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        settings = Settings.from_env(
            {
                "CAC_DATA_DIR": str(data),
                "CAC_DATABASE_URL": f"sqlite:///{data / 'service.sqlite'}",
                "CAC_AUTH_DISABLED": "1",
            }
        )
        mp = pytest.MonkeyPatch()
        mp.setenv("CAC_PAGE_SECRET", SECRET.decode())
        try:
            app = create_app(settings)
        finally:
            mp.undo()
        store = ReportStore(data / "reports")
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
        server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        result = Served(f"http://127.0.0.1:{server.server_port}")
        try:
            for name, (agatston, context) in CASES.items():
                page = render_patient_page(interpret(agatston, context), context, IDENTIFICATION)
                store.save(
                    name,
                    ReportArtefacts(page, "<!DOCTYPE html><title>-</title>", b"%PDF-", [], []),
                )
                token = sign_page_token(SECRET, name, PageKind.PATIENT, expires)
                result.links[name] = f"{result.base_url}/pages/patient/{token}"
            result.phantom = _phantom_bundle()
            store.save("phantom", result.phantom)
            token = sign_page_token(SECRET, "phantom", PageKind.CLINICIAN, expires)
            result.links["phantom-clinician"] = f"{result.base_url}/pages/clinician/{token}"
            expired = sign_page_token(
                SECRET, "cac-0", PageKind.PATIENT, expires - datetime.timedelta(days=2)
            )
            result.links["expired"] = f"{result.base_url}/pages/patient/{expired}"
            yield result
        finally:
            server.shutdown()
            thread.join(timeout=10)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium poppler-utils")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Watched:
    """What a page did: console errors, page errors, requests to other hosts."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def _open(browser: Browser, base_url: str, url: str, **context_args: Any) -> tuple[Watched, int]:
    context = browser.new_context(**context_args)
    page = context.new_page()
    watched = Watched(page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            watched.console_errors.append(f"{message.type}: {message.text}")

    def on_route(route: Route, request: Request) -> None:
        if request.url.startswith(base_url + "/") or request.url.startswith("data:"):
            route.continue_()
        else:
            watched.external.append(request.url)
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(f"pageerror: {error}"))
    page.route("**/*", on_route)
    response = page.goto(url, wait_until="load")
    assert response is not None
    return watched, response.status


def _shot(page: Page, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.parametrize("case", list(CASES))
class TestPatientPage:
    def test_summary_picture_and_point_on_screen(
        self, browser: Browser, served: Served, case: str
    ) -> None:
        watched, status = _open(
            browser, served.base_url, served.links[case], viewport={"width": 1000, "height": 900}
        )
        page = watched.page
        assert status == 200
        assert page.locator("h1").inner_text() == "Your heart calcium scan result"
        summary = page.get_by_test_id("summary")
        assert summary.is_visible()
        assert "What does this scan show?" in summary.inner_text()
        assert page.locator('[data-testid="cac-drs-scale"] li[aria-current="true"]').is_visible()
        if case == "mesa-not-applicable":
            assert page.locator("svg#mesa-chart").count() == 0
            assert "cannot show" in page.get_by_test_id("mesa-not-applicable").inner_text()
        else:
            chart = page.locator("svg#mesa-chart").bounding_box()
            point = page.locator("svg#mesa-chart g.patient-point circle").bounding_box()
            assert chart is not None
            assert point is not None
            assert chart["width"] > 300
            assert chart["x"] <= point["x"] <= chart["x"] + chart["width"]
            assert chart["y"] <= point["y"] <= chart["y"] + chart["height"]
        assert page.locator("svg#age-chart").is_visible()
        _shot(page, f"patient-{case}-desktop")
        assert watched.console_errors == []
        assert watched.external == []
        page.context.close()

    def test_phone_and_200_percent_zoom_reflow(
        self, browser: Browser, served: Served, case: str
    ) -> None:
        for width, name in ((390, "phone"), (320, "zoom-200")):
            watched, _ = _open(
                browser,
                served.base_url,
                served.links[case],
                viewport={"width": width, "height": 800},
                device_scale_factor=2 if name == "zoom-200" else 1,
            )
            page = watched.page
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, (name, scroll_width)
            font_px = page.evaluate(
                "parseFloat(getComputedStyle(document.querySelector('main p')).fontSize)"
            )
            assert font_px >= 16
            _shot(page, f"patient-{case}-{name}")
            assert watched.console_errors == []
            page.context.close()

    def test_axe_finds_no_serious_violation(
        self, browser: Browser, served: Served, case: str
    ) -> None:
        if not AXE.exists():
            pytest.fail(f"{AXE} is missing: run `npm ci` in tests/reports (scripts/bootstrap does)")
        # axe is a script: the page's CSP forbids scripts, so this context bypasses it
        watched, _ = _open(browser, served.base_url, served.links[case], bypass_csp=True)
        page = watched.page
        page.add_script_tag(path=str(AXE))
        results = page.evaluate(
            "axe.run(document, {runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        (ARTEFACTS / f"axe-{case}.json").write_text(json.dumps(results["violations"], indent=1))
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]])
            for v in results["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == []
        assert len(results["passes"]) > 10
        page.context.close()

    def test_prints_cleanly(self, browser: Browser, served: Served, case: str) -> None:
        watched, _ = _open(browser, served.base_url, served.links[case])
        page = watched.page
        page.emulate_media(media="print")
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        pdf_path = ARTEFACTS / f"patient-{case}-print.pdf"
        page.pdf(path=str(pdf_path), format="A4", print_background=True)
        info = subprocess.run(
            ["pdfinfo", str(pdf_path)], check=True, capture_output=True, text=True
        ).stdout
        pages = int(
            next(line for line in info.splitlines() if line.startswith("Pages:")).split()[1]
        )
        assert 1 <= pages <= 3
        text = subprocess.run(
            ["pdftotext", str(pdf_path), "-"], check=True, capture_output=True, text=True
        ).stdout
        assert "Your score" in text
        assert "What can you do?" in text
        page.context.close()


class TestLinksInTheBrowser:
    def test_expired_link_shows_the_friendly_page(self, browser: Browser, served: Served) -> None:
        watched, status = _open(browser, served.base_url, served.links["expired"])
        assert status == 410
        assert watched.page.locator("h1").inner_text() == "This link has expired"
        assert watched.external == []
        _shot(watched.page, "link-expired")
        watched.page.context.close()

    def test_tampered_link_shows_the_friendly_page(self, browser: Browser, served: Served) -> None:
        url = served.links["cac-0"][:-3] + "xyz"
        watched, status = _open(browser, served.base_url, url)
        assert status == 404
        assert watched.page.locator("h1").inner_text() == "This link does not work"
        _shot(watched.page, "link-tampered")
        watched.page.context.close()


class TestClinicianReportInTheBrowser:
    def test_key_images_load_and_nothing_external(self, browser: Browser, served: Served) -> None:
        watched, status = _open(
            browser,
            served.base_url,
            served.links["phantom-clinician"],
            viewport={"width": 1200, "height": 900},
        )
        page = watched.page
        assert status == 200
        assert served.phantom is not None
        images = page.get_by_test_id("key-image").locator("img")
        assert images.count() == len(served.phantom.key_images) >= 1
        widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
        assert all(w >= 480 for w in widths)
        rows = page.get_by_test_id("table-per-artery").locator("tbody tr")
        assert [rows.nth(i).locator("th").inner_text() for i in range(5)] == [
            "LM",
            "LAD",
            "LCX",
            "RCA",
            "Total",
        ]
        _shot(page, "clinician-phantom")
        for index, png in enumerate(served.phantom.key_images, start=1):
            (ARTEFACTS / f"clinician-phantom-key-{index}.png").write_bytes(png)
        (ARTEFACTS / "clinician-phantom.pdf").write_bytes(served.phantom.clinician_pdf)
        assert watched.console_errors == []
        assert watched.external == []
        page.context.close()
