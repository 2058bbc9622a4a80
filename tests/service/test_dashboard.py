"""The dashboard: its login rules in-process (fast), and a real browser over a real service
with a finished search (slow)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from soup_search.analysis.paired import PairedDelta
from soup_search.service.app import Services, create_app
from soup_search.service.db import Database
from soup_search.service.deps import COOKIE
from soup_search.service.jobs import Jobs
from soup_search.service.models import ACTIVE, SUCCEEDED, AuditEvent, Search, utcnow
from soup_search.service.reconcile import Reconciler
from soup_search.service.routers import dashboard, searches
from soup_search.service.settings import Settings
from soup_search.service.tokens import create_token, revoke_token
from tests.service.conftest import make_token, tiny_config_text, wait_state

#: a results.json as a run writes it, cut to what the dashboard reads
RESULTS = {"comparison": [
    {"name": "best soup", "kind": "soup", "dev_mean": 0.4, "test_mean": 0.371875},
    {"name": "expert_a", "kind": "expert", "dev_mean": 0.32, "test_mean": 0.31,
     "delta": 0.061875, "ci_low": 0.0125, "ci_high": 0.1125, "p_value": 0.0123},
    {"name": "uniform_all", "kind": "uniform_all", "dev_mean": 0.35, "test_mean": 0.38,
     "delta": -0.0125, "ci_low": -0.05, "ci_high": 0.025, "p_value": 0.653},
    {"name": "expert_b", "kind": "expert", "dev_mean": 0.32, "test_mean": 0.33,  # a CI that touches 0
     "delta": 0.04375, "ci_low": 0.0, "ci_high": 0.0875, "p_value": 0.0798},
]}
PNG = b"\x89PNG\r\n\x1a\n fake"
LOGIN_ERROR = "unknown or revoked token; create one with soup-search tokens create"


# ---------------------------------------------------------------------- in-process (fast)
@pytest.fixture
def app(tmp_path):
    """The app around a real SQLite database, one read token and one succeeded search; no Ray (the
    reconcile loop is off and its job server address is unused)."""
    db = Database(f"sqlite:///{tmp_path / 'service.sqlite'}")
    run = tmp_path / "searches" / "s1" / "run"
    (run / "plots").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(RESULTS))
    (run / "soup.yaml").write_text("merge_method: linear\n")
    (run / "plots" / "comparison.png").write_bytes(PNG)
    with db.session() as s:
        token, secret = create_token(s, "reader", "read")
        now = utcnow()
        s.add(Search(id="s1", owner_id=token.id, name="tiny", config="name: tiny\n", request_hash="0" * 64,
                     state=SUCCEEDED, out_dir=str(run), progress={"trials": 4, "budget": 4, "best_dev": 0.4},
                     created_at=now, updated_at=now, finished_at=now))
    svc = Services(settings=Settings(data_dir=tmp_path), db=db,
                   reconciler=Reconciler(db, Jobs("http://127.0.0.1:9")))
    with TestClient(create_app(svc, loop=False), follow_redirects=False) as client:
        client.secret = secret
        client.db = db
        yield client
    db.close()


def login(client: TestClient, secret: str, back: str = "/"):
    return client.post("/login", data={"token": secret, "next": back})


@pytest.mark.parametrize("path", ["/", "/?state=running", "/searches/s1", "/searches/s1/files/results",
                                  "/searches/s1/plots/comparison.png"])
def test_pages_redirect_to_the_login_without_a_token(app, path):
    r = app.get(path)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    app.cookies.set(COOKIE, "ss_not-a-token")
    assert app.get(path).status_code == 303


def test_a_bad_token_shows_the_form_again_with_one_line_and_401(app):
    r = login(app, "ss_wrong")
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert 'name="token"' in r.text
    assert f'<p class="error" id="login-error">{LOGIN_ERROR}</p>' in r.text
    with app.db.session() as s:
        audit = s.scalars(select(AuditEvent).where(AuditEvent.path == "/login")).all()
    assert [(a.method, a.status, a.token_id) for a in audit] == [("POST", 401, None)]


def test_a_good_token_sets_a_strict_httponly_cookie_and_opens_the_searches(app):
    r = login(app, app.secret)
    assert (r.status_code, r.headers["location"]) == (303, "/")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={app.secret};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http (loopback): a Secure cookie would never come back
    page = app.get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert '<a href="/searches/s1">s1</a>' in page.text
    assert '<td class="state state-succeeded">succeeded</td>' in page.text
    assert '4 / 4' in page.text and '0.4000' in page.text
    assert 's1' not in app.get("/?state=running").text.split("<tbody>")[1]
    bad = app.get("/?state=done")
    assert bad.status_code == 422 and "unknown state &#39;done&#39;" in bad.text


def test_login_returns_to_the_page_asked_for_but_never_off_site(app):
    first = app.get("/searches/s1")
    assert first.headers["location"] == "/login?next=%2Fsearches%2Fs1"
    assert 'name="next" value="/searches/s1"' in app.get(first.headers["location"]).text
    assert login(app, app.secret, "/searches/s1").headers["location"] == "/searches/s1"
    for off_site in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        assert login(app, app.secret, off_site).headers["location"] == "/"


def test_logout_clears_the_cookie_and_a_revoked_token_is_refused(app):
    login(app, app.secret)
    assert app.get("/").status_code == 200
    out = app.get("/logout")
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert out.headers["set-cookie"].startswith(f'{COOKIE}=""') and "Max-Age=0" in out.headers["set-cookie"]
    assert app.get("/").status_code == 303
    login(app, app.secret)
    with app.db.session() as s:
        revoke_token(s, "reader")
    assert app.get("/").status_code == 303


def test_the_search_page_shows_results_json_marks_significance_and_serves_files_by_cookie(app):
    login(app, app.secret)
    page = app.get("/searches/s1").text
    table = page.split('<table id="comparison">')[1].split("</table>")[0]
    rows = table.split("<tr")[2:]  # after the header's row
    assert ["best soup" in rows[0], "expert_a" in rows[1], "uniform_all" in rows[2]] == [True] * 3
    assert 'class="significant"' in rows[1] and "+0.0619 [+0.0125, +0.1125] *" in rows[1] and "0.0123" in rows[1]
    assert 'class="significant"' not in rows[2] and "-0.0125 [-0.0500, +0.0250]<" in rows[2] and "0.653" in rows[2]
    assert "optuna-dashboard sqlite:///" in page and "optuna.sqlite" in page
    assert '<img id="plot-comparison" src="/searches/s1/plots/comparison.png"' in page
    links = {label: url for url, label in re.findall(r'<a href="(/searches/s1/files/[^"]+)">([^<]+)</a>', page)}
    assert links == {"results.json": "/searches/s1/files/results", "soup.yaml": "/searches/s1/files/soup.yaml"}
    assert app.get(links["results.json"]).json() == RESULTS
    assert app.get(links["soup.yaml"]).text == "merge_method: linear\n"
    assert app.get("/searches/s1/plots/comparison.png").content == PNG
    assert app.get("/searches/s1/files/report").status_code == 404  # not written: the API's own 404
    assert app.get("/searches/s1/files/config.yaml").status_code == 404
    assert app.get("/searches/s1/plots/..%2Fresults.png").status_code == 404
    assert app.get("/searches/nope").status_code == 404


@pytest.mark.parametrize("row", RESULTS["comparison"][1:], ids=lambda r: r["name"])
def test_the_delta_cells_read_as_the_report_writes_them(row):
    d = PairedDelta(delta=row["delta"], ci_low=row["ci_low"], ci_high=row["ci_high"], p_value=row["p_value"], n=320)
    assert dashboard.delta_cells(row) == {"delta": d.interval(), "p_value": f"{d.p_value:.3g}",
                                          "significant": d.significant}


def test_the_dashboard_serves_every_artifact_the_api_serves():
    assert set(dashboard.FILES) == set(searches.ARTIFACTS) | {"logs"}


# ---------------------------------------------------------------------- a real browser (slow)
def chrome_paths() -> tuple[str, str]:
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [p for p in (browser, driver) if not Path(p).is_file()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install them (apt-get install chromium chromium-driver)",
                    pytrace=False)
    return browser, driver


@pytest.fixture
def browser(monkeypatch, tmp_path):
    """Headless Debian chromium through its own chromedriver; Selenium Manager downloads nothing."""
    binary, driver_path = chrome_paths()
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,1024"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=driver_path))
    yield driver
    driver.quit()


def plot_loaded(name: str):
    return lambda d: d.execute_script(
        "const img = document.getElementById(arguments[0]);"
        "return img !== null && img.complete && img.naturalWidth > 0;", f"plot-{name}")


@pytest.mark.slow
def test_a_browser_logs_in_and_reads_a_finished_search(browser, service):
    service.start()
    writer = make_token(service.data_dir, "writer", "write")
    reader = make_token(service.data_dir, "reader", "read")
    with service.client(writer) as api:
        created = api.post("/v1/searches", content=tiny_config_text(n_trials=4), headers={"content-type": "text/yaml"})
        assert created.status_code == 201, created.text
        search_id = created.json()["id"]
        try:
            done = wait_state(api, search_id, ("succeeded", "failed", "cancelled"))
        finally:  # a running search's driver would outlive the service's Ray head (not in its process group)
            if api.get(f"/v1/searches/{search_id}").json()["state"] in ACTIVE:
                api.post(f"/v1/searches/{search_id}/cancel")
        assert done["state"] == "succeeded", done["reason"]
        results = api.get(f"/v1/searches/{search_id}/results").json()
    wait = WebDriverWait(browser, 30)

    browser.get(f"{service.url}/")
    wait.until(ec.url_contains("/login"))
    browser.find_element(By.ID, "token").send_keys("ss_wrong")
    browser.find_element(By.ID, "login").click()
    error = wait.until(ec.visibility_of_element_located((By.ID, "login-error")))
    assert error.text == LOGIN_ERROR

    browser.find_element(By.ID, "token").send_keys(reader)
    browser.find_element(By.ID, "login").click()
    row = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f'#searches tr[data-id="{search_id}"]')))
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:5] == [search_id, "tiny", "writer", "succeeded", "4 / 4"]
    cookie = browser.get_cookie(COOKIE)
    assert (cookie["value"], cookie["httpOnly"], cookie["sameSite"]) == (reader, True, "Strict")

    row.find_element(By.LINK_TEXT, search_id).click()
    table = wait.until(ec.presence_of_element_located((By.ID, "comparison")))
    shown = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    expected = [r["name"] for r in results["comparison"]]
    assert [r[0] for r in shown] == expected
    assert {"best soup", "uniform_all", "uniform_experts"} <= set(expected)
    for cells, r in zip(shown, results["comparison"]):
        assert cells[2:4] == [f"{r['dev_mean']:.4f}", f"{r['test_mean']:.4f}"]
        if r.get("delta") is not None:
            star = " *" if r["ci_low"] > 0 or r["ci_high"] < 0 else ""
            assert cells[4] == f"{r['delta']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]{star}"
            assert cells[5] == f"{r['p_value']:.3g}"
    assert browser.find_element(By.ID, "optuna").text.startswith("optuna-dashboard sqlite:///")
    plots = {img.get_attribute("id").removeprefix("plot-")
             for img in browser.find_elements(By.CSS_SELECTOR, ".plots img")}
    assert {"comparison", "forest"} <= plots
    for name in sorted(plots):
        wait.until(plot_loaded(name), f"plot {name} did not load")

    browser.find_element(By.LINK_TEXT, "results.json").click()
    wait.until(ec.url_contains("/files/results"))
    assert json.loads(browser.find_element(By.TAG_NAME, "pre").text) == results

    browser.get(f"{service.url}/logout")
    wait.until(ec.url_contains("/login"))
    assert browser.get_cookie(COOKIE) is None
    browser.get(f"{service.url}/searches/{search_id}")
    wait.until(ec.url_contains("/login?next="))
