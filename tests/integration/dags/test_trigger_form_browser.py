"""The operator's path, as operators take it: the Airflow UI in a real browser (Debian's chromium,
driven by playwright) against the stack's own Airflow, scheduler and workers.

Logs in as admin, opens ``ingest_documents``, opens the trigger form (it must open without an
error state: Source and Document ids are both optional, either one is enough), fills Source (a
folder of small text files under the workers' ``INGEST_ALLOWED_ROOTS``) and Tenant (a fresh one),
triggers, follows the run until it ends, and finds the documents indexed in PostgreSQL.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from rag.adapters.airflow import AirflowClient
from rag.settings import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.integration

DAG_ID = "ingest_documents"
CHROMIUM = "chromium"  # Debian's package and binary (`make system-deps`)
FILES = {
    "tides.txt": "Tides\n\nThe moon's gravity raises two tidal bulges on the oceans.",
    "volcanoes.txt": "Volcanoes\n\nMagma that reaches the surface erupts as lava and ash.",
    "glaciers.txt": "Glaciers\n\nCompacted snow flows downhill as a slow river of ice.",
}
RUN_LIMIT_S = 300.0  # a bound so that a stuck run fails the test instead of hanging it
FINAL_STATES = {"success", "failed", "canceled"}


def _chromium() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.fail(
            f"{CHROMIUM} is not installed: the browser test drives Debian's chromium "
            "(`make system-deps`, or `apt-get install chromium`)",
            pytrace=False,
        )
    return found


@pytest.fixture
def browser() -> Iterator[Browser]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make install` (it is in the dev extra)", pytrace=False)
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI and the stack run as root).
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def source(settings: Settings) -> Iterator[Path]:
    """A folder of small text files the stack's workers may read (their INGEST_ALLOWED_ROOTS)."""
    assert settings.INGEST_ALLOWED_ROOTS, "the stack's settings allow no folder to ingest from"
    folder = Path(tempfile.mkdtemp(prefix="browser-ingest-", dir=settings.INGEST_ALLOWED_ROOTS[0]))
    try:
        for name, text in FILES.items():
            (folder / name).write_text(text, encoding="utf-8")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _log_in(page: Page, settings: Settings) -> None:
    assert settings.AIRFLOW_PASSWORD is not None, "the stack's settings have no AIRFLOW_PASSWORD"
    page.goto(f"{settings.AIRFLOW_API_URL}/auth/login")
    page.fill("input[name=username]", settings.AIRFLOW_USERNAME)
    page.fill("input[name=password]", settings.AIRFLOW_PASSWORD.get_secret_value())
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _wait_for_run(airflow: AirflowClient, run_id: str) -> str:
    deadline = time.monotonic() + RUN_LIMIT_S
    state = airflow.run_state(DAG_ID, run_id)
    while state not in FINAL_STATES and time.monotonic() < deadline:
        time.sleep(2)
        state = airflow.run_state(DAG_ID, run_id)
    return state


def test_an_operator_triggers_an_ingestion_from_the_form(
    page: Page, settings: Settings, source: Path, db: psycopg.Connection
) -> None:
    from playwright.sync_api import expect

    tenant = f"ui{uuid.uuid4().hex[:8]}"
    _log_in(page, settings)
    page.goto(f"{settings.AIRFLOW_API_URL}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    form_source, form_tenant = dialog.locator("#element_source"), dialog.locator("#element_tenant")
    expect(form_source).to_be_visible()
    expect(dialog.locator("#element_document_ids")).to_be_visible()

    # Opened, untouched, as the operator first sees it: neither Source nor Document ids is a
    # required field, the "Run Parameters" section carries no error mark (the icon the form adds
    # beside its title), and the dialog's Trigger button is enabled (a form error disables it).
    expect(dialog.locator("#element_source[required], #element_document_ids[required]")).to_have_count(0)
    run_parameters = dialog.get_by_role("button", name="Run Parameters")
    expect(run_parameters).to_be_visible()
    expect(run_parameters.locator("svg.chakra-icon")).to_have_count(0)
    trigger = dialog.get_by_role("button", name="Trigger", exact=True)
    expect(trigger).to_be_enabled()

    form_source.fill(str(source))
    form_tenant.fill(tenant)
    expect(trigger).to_be_enabled()
    trigger.click()
    page.wait_for_url(f"**/dags/{DAG_ID}/runs/**")
    run_id = page.url.split(f"/dags/{DAG_ID}/runs/", 1)[1].split("/", 1)[0].split("?", 1)[0]

    airflow = AirflowClient(
        settings.AIRFLOW_API_URL,
        settings.AIRFLOW_USERNAME,
        settings.AIRFLOW_PASSWORD.get_secret_value() if settings.AIRFLOW_PASSWORD else None,
    )
    try:
        state = _wait_for_run(airflow, run_id)
    finally:
        airflow.close()
    assert state == "success", f"run {run_id} ended {state!r} (its task logs are in the Airflow UI)"

    rows = db.execute(
        "SELECT d.source_uri, d.status::text, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
        " FROM documents d WHERE d.tenant = %s",
        (tenant,),
    ).fetchall()
    indexed = {uri.rsplit("/", 1)[-1]: (status, chunks) for uri, status, chunks in rows}
    assert set(indexed) == set(FILES), indexed
    assert all(status == "indexed" and chunks >= 1 for status, chunks in indexed.values()), indexed
