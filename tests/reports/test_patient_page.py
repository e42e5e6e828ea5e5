"""The patient page's HTML: content for every CAC-DRS category, the MESA-not-applicable case, the
text alternatives, and readability of the page's own words."""

from __future__ import annotations

import re

import pytest
import textstat
from bs4 import BeautifulSoup

from interpretation import MesaRace, PatientContext, Sex, interpret
from reports.errors import InvalidReportInputError
from reports.patient_page import render_link_error_page, render_patient_page, summary_parts
from tests.reports.conftest import context_for

#: One score per CAC-DRS category (Hecht, JCCT 2018), with its band's range text.
CATEGORY_SCORES = [(0.0, "0"), (42.0, "1 to 99"), (150.0, "100 to 299"), (420.0, "300 or more")]


def _page(agatston: float, context: PatientContext) -> BeautifulSoup:
    html = render_patient_page(interpret(agatston, context), context)
    return BeautifulSoup(html, "html.parser")


class TestEveryCategory:
    @pytest.mark.parametrize(("agatston", "band"), CATEGORY_SCORES)
    def test_score_band_picture_and_summary(self, agatston: float, band: str) -> None:
        context = context_for(age=62, sex=Sex.FEMALE, race=MesaRace.BLACK)
        page = _page(agatston, context)
        assert page.select_one('[data-testid="score"]').get_text() == str(int(agatston))
        current = page.select('[data-testid="cac-drs-scale"] li[aria-current="true"]')
        assert len(current) == 1
        assert current[0].select_one(".range").get_text() == band
        svg = page.select_one("svg#mesa-chart")
        assert svg is not None
        assert svg["role"] == "img"
        assert page.select_one("#mesa-chart-title").get_text()
        assert "MESA study" in page.select_one("#mesa-chart-desc").get_text()
        point = svg.select_one("g.patient-point")
        assert point is not None
        assert point["data-agatston"] == str(int(agatston))
        summary = page.select_one('[data-testid="summary"]')
        assert summary.select("h3")[0].get_text() == "What does this scan show?"
        assert f"Your score is {int(agatston)}." in summary.get_text()

    def test_patient_point_percentile_matches_the_interpretation(self) -> None:
        context = context_for(age=55, sex=Sex.MALE, race=MesaRace.WHITE)
        page = _page(68.0, context)
        # clinical.md section 5: 55-year-old White man, score 68 -> 75th percentile
        assert page.select_one("g.patient-point")["data-percentile"] == "75"
        assert "higher than about 75 in 100" in page.select_one("figcaption").get_text()

    def test_every_picture_has_a_text_alternative(self) -> None:
        page = _page(150.0, context_for())
        for svg in page.select("svg"):
            ids = svg["aria-labelledby"].split()
            assert [page.find(id=i).name for i in ids] == ["title", "desc"]
            assert all(page.find(id=i).get_text().strip() for i in ids)

    def test_self_contained_without_script(self) -> None:
        html = render_patient_page(interpret(150.0, context_for()), context_for())
        page = BeautifulSoup(html, "html.parser")
        assert page.find("script") is None
        assert page.find("link") is None
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
        assert "@import" not in html
        csp = page.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
        assert csp["content"].startswith("default-src 'none'")
        assert page.html["lang"] == "en"

    def test_landmarks_and_heading_order(self) -> None:
        page = _page(42.0, context_for())
        assert page.find("main") is not None
        assert page.find("header") is not None
        assert [h.name for h in page.find_all(["h1", "h2"])][:2] == ["h1", "h2"]
        assert len(page.find_all("h1")) == 1


class TestMesaNotApplicable:
    @pytest.mark.parametrize(
        ("context", "why"),
        [
            (context_for(age=40), "aged 45 to 84"),
            (context_for(race=None, race_detail="Asian (not Chinese)"), "four groups"),
            (PatientContext(age_years=60, sex=None), "groups people by sex"),
        ],
    )
    def test_says_so_kindly_and_shows_the_scale(self, context: PatientContext, why: str) -> None:
        page = _page(150.0, context)
        assert page.select_one("svg#mesa-chart") is None
        note = page.select_one('[data-testid="mesa-not-applicable"]').get_text()
        assert why in note
        assert "This does not change your result" in note
        assert page.select_one('[data-testid="cac-drs-scale"] li[aria-current="true"]')

    def test_context_without_the_cell_of_the_interpretation(self) -> None:
        interpretation = interpret(150.0, context_for())
        with pytest.raises(InvalidReportInputError, match="context"):
            render_patient_page(interpretation, context_for(race=None))


class TestSummaryParts:
    def test_questions_lists_and_closing_line(self) -> None:
        parts = summary_parts(
            "What is it?\nA scan.\n\nWhat can you do?\nSteps:\n- Walk.\n- Eat well.\n\n"
            "Extra line.\n\nWill you need another?\nNo.\n\nTalk to your doctor."
        )
        assert [p.heading for p in parts] == [
            "What is it?",
            "What can you do?",
            "Will you need another?",
            None,
        ]
        assert parts[1].blocks[1].items == ("Walk.", "Eat well.")
        assert parts[1].blocks[2].text == "Extra line."
        assert parts[3].blocks[0].text == "Talk to your doctor."


@pytest.mark.usefixtures("cmu_dictionary")
class TestReadability:
    @pytest.mark.parametrize(("agatston", "_band"), CATEGORY_SCORES)
    def test_page_words_are_plain(self, agatston: float, _band: str) -> None:
        page = _page(agatston, context_for())
        # the page's own words (the summary is measured by the interpretation tests)
        for selector in ("#score", "#compare figcaption", "#heart-age figcaption"):
            text = page.select_one(selector).get_text(" ", strip=True)
            assert textstat.flesch_kincaid_grade(text) <= 8, (selector, text)

    def test_not_applicable_note_is_plain(self) -> None:
        note = _page(42.0, context_for(age=40)).select_one('[data-testid="mesa-not-applicable"]')
        assert textstat.flesch_kincaid_grade(note.get_text(" ", strip=True)) <= 8


class TestLinkErrorPage:
    @pytest.mark.parametrize("expired", [True, False])
    def test_reveals_nothing(self, expired: bool) -> None:
        page = BeautifulSoup(render_link_error_page(expired=expired), "html.parser")
        assert page.find("h1").get_text() == (
            "This link has expired" if expired else "This link does not work"
        )
        assert page.find("script") is None
