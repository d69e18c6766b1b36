"""Issue 26's dashboard, asserted in the DOM of headless Chromium at 1280 px against a real hub and worker:

- a version page of each method's output reads like a model card (summary, "use it", metrics table, the method's
  report card) and shows no raw JSON until the reader unfolds it;
- no page scrolls sideways; long metric keys wrap instead of overprinting their values;
- the job list filters by state and kind from the URL and pages; a job page shows step N of M and an ETA while it
  runs, only the panels that apply, failed and cancelled styled as such, and asks before cancelling;
- the lineage graph has arrowheads, labels that do not overlap on fan-out, and each node's base;
- a wrong token is refused (401) before anything says "saved".
"""
from __future__ import annotations

import re
import time

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.dashboard.driving import (BASE, full_shot, open_page, overflow, page_errors, text_of, unfolded_json,
                                     wait_for)

TERMINAL = ("succeeded", "failed", "cancelled")
TARGET = {"name": "card-tiny-gemma3", "source": "tiny:gemma3?seed=1"}
BROKEN = "card-broken-base"  # registered with weights nowhere: a job on it fails while running
TASK = "builtin:word_sorting?n=24&test=8&seed=0"
KIT = {"task": TASK, "seeds": 5, "steps": 8, "lr": 1e-2, "max_new_tokens": 24, "rank": 4}
TRANSFER = {"target_base": TARGET["name"], "synthetic_size": 6, "max_new_tokens": 16, "label_max_new_tokens": 12,
            "steps": 6, "rank": 4, "lr": 1e-2, "measure_mmd": False, "max_attempts": 400, "give_up_after": 400}
ACCENT_BLUE = "rgb(59, 91, 219)"  # --accent: the colour of a running job's bar


def submit(url, token, body) -> str:
    res = httpx.post(f"{url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"}, json=body)
    assert res.status_code == 202, res.text
    return res.json()["id"]


def finished(url, token, job_id, timeout=300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
        if job["state"] in TERMINAL:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def register_base(url, token, name, source, model):
    from lora.bases import architecture, module_shapes

    res = httpx.post(f"{url}/api/v1/bases", headers={"Authorization": f"Bearer {token}"}, json={
        "name": name, "architecture": architecture(model), "source": source,
        "module_shapes": {k: list(v) for k, v in module_shapes(model).items()}})
    assert res.status_code in (200, 201), res.text


@pytest.fixture(scope="module")
def made(hub, registered, worker):
    """One version of each method's output on tiny bases (train + evaluate, transfer kit, transfer, merge, unlearn,
    generator, generated adapter), a failed job and a cancelled one; returns their job ids by name."""
    from lora.bases import load_base

    url, token, _ = hub
    register_base(url, token, TARGET["name"], TARGET["source"], load_base(TARGET["source"])[0])
    register_base(url, token, BROKEN, "dir:/nonexistent/card-broken", load_base("tiny:llama")[0])

    def run(name, body):
        job = finished(url, token, submit(url, token, body))
        assert job["state"] == "succeeded", (name, job["error"])
        return job["id"]

    jobs = {"train": run("train", {"kind": "train", "output": "card/bool", "params": {
        "base": BASE, "task": TASK, "steps": 6, "rank": 2, "batch_size": 4}})}
    jobs["evaluate"] = run("evaluate", {"kind": "evaluate", "inputs": ["card/bool@1"],
                                        "params": {"task": "builtin:word_sorting?n=8&test=4&seed=1"}})
    jobs["kit"] = run("kit", {"kind": "transfer_kit", "inputs": ["card/bool@1"], "output": "card/bool-kit",
                              "params": KIT})
    jobs["transfer"] = run("transfer", {"kind": "transfer", "inputs": ["card/bool@1"], "output": "card/bool-moved",
                                        "params": TRANSFER})
    jobs["unlearn"] = run("unlearn", {"kind": "unlearn", "inputs": ["card/bool@1"], "output": "card/forgetful",
                                      "params": {"forget": "builtin:boolean_expressions?n=12&test=4&seed=2",
                                                 "steps": 4, "rank": 2, "lora_alpha": 4, "detector_steps": 3,
                                                 "detector_rank": 2, "batch_size": 4, "detector_batch_size": 4}})
    for k in (1, 2):
        jobs[f"shift-{k}"] = run("shift", {"kind": "train", "output": f"card/shift-{k}", "params": {
            "base": BASE, "task": f"builtin:caesar_shift?k={k}&n=8&test=2", "steps": 4, "rank": 2,
            "checkpoint_every": 2}})
    jobs["merge"] = run("merge", {"kind": "merge", "inputs": ["card/bool@1", "card/shift-1@1"],
                                  "output": "card/merged", "params": {"method": "lego", "rank": 2}})
    jobs["generator"] = run("generator", {
        "kind": "train_generator", "inputs": ["card/shift-1@1", "card/shift-2@1"], "output": "card/gen",
        "params": {"condition": "text", "descriptions": ["shift by one", "shift by two"], "epochs": 6, "latent": 4,
                   "basis": 4}})
    jobs["generate"] = run("generate", {"kind": "generate", "inputs": ["card/gen@1"], "output": "card/gen-out",
                                        "params": {"description": "shift by three", "samples": 3,
                                                   "select": "likelihood",
                                                   "examples": "builtin:caesar_shift?k=3&n=4&test=2"}})
    failed = finished(url, token, submit(url, token, {"kind": "train", "output": "card/never", "params": {
        "base": BROKEN, "task": TASK, "steps": 2, "rank": 2}}))
    assert failed["state"] == "failed", failed
    jobs["failed"] = failed["id"]
    return jobs


# (page, the report card it must show or None, what "made by" names)
VERSION_PAGES = [
    ("#/adapters/card/bool@1", None, "train"),
    ("#/adapters/card/bool-kit@1", "kit-report", "transfer_kit"),
    ("#/datasets/card/bool-kit@1", None, "transfer_kit"),
    ("#/adapters/card/bool-moved@1", "transfer-report", "transfer"),
    ("#/adapters/card/merged@1", "merge-report", "merge"),
    ("#/adapters/card/forgetful@1", "unlearn-report", "unlearn"),
    ("#/generators/card/gen@1", "generator-report", "train_generator"),
    ("#/adapters/card/gen-out@1", "generate-report", "generate"),
]


def test_version_pages_of_each_method_read_like_a_model_card_without_unfolded_json_or_sideways_scroll(
        browser, hub, made, shots):
    url, token, _ = hub
    for page, report, kind in VERSION_PAGES:
        open_page(browser, url, token, page)
        wait_for(browser, lambda d: d.find_elements(By.ID, "summary"), what=f"{page} summary")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#made-by b")
                 and text_of(d, "#made-by b") == kind, what=f"{page} made by {kind}")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#use-it pre.snippet"), what=f"{page} use it")
        wait_for(browser, lambda d: d.find_elements(By.ID, "lineage-graph"), what=f"{page} lineage")
        if report:
            assert browser.find_element(By.ID, report).is_displayed(), page
        reports = [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "#reports .report")]
        assert reports == ([report] if report else []), page
        assert overflow(browser) <= 0, f"{page} scrolls sideways by {overflow(browser)} px"
        assert unfolded_json(browser) == [], page
        name = re.sub(r"[^a-z0-9]+", "-", page.lower()).strip("-")
        full_shot(browser, shots / f"{name}.png")
        if page.startswith("#/adapters/"):
            snippet = text_of(browser, "#use-python")
            ref = page.removeprefix("#/adapters/").split("@")[0]
            assert f'os.environ["HF_ENDPOINT"] = "{url}"' in snippet
            assert f'PeftModel.from_pretrained(base_model, "{ref}", revision="v1")' in snippet
            assert browser.find_element(By.ID, "peft-config").get_attribute("open") is None
        plural, ref = page.removeprefix("#/").split("/", 1)
        command = "adaptarium pull" if plural == "adapters" else f"adaptarium {plural} pull"
        assert f"{command} {ref} ./{ref.split('/')[1].split('@')[0]}" in text_of(browser, "#use-cli")
    assert page_errors(browser) == []


def test_each_report_card_shows_the_numbers_its_method_is_judged_by(browser, hub, made):
    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}

    def metrics(path):
        return httpx.get(f"{url}/api/v1/{path}", headers=auth).json()["metrics"]

    open_page(browser, url, token, "#/adapters/card/bool-moved@1")
    rate = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#acceptance-rate .stat-value"),
                    what="acceptance")[0].text
    expected = metrics("adapters/card/bool-moved/versions/1")["transfer"]["acceptance_rate"]
    assert rate == f"{100 * expected:.1f} %"
    assert browser.find_element(By.ID, "transfer-ablation")

    open_page(browser, url, token, "#/adapters/card/forgetful@1")
    wait_for(browser, lambda d: d.find_elements(By.ID, "gate-forget"), what="gate")
    assert int(browser.find_element(By.ID, "unlearn-loss").get_attribute("data-points")) == 4
    assert browser.find_element(By.ID, "orth-loss") and browser.find_element(By.ID, "gate-calibration")
    # the calibrated gate as shares of inputs opened and shut, out-of-fold, beside the paper gate's ablation
    gate = metrics("adapters/card/forgetful/versions/1")["unlearn"]["detector"]["gate"]
    held_out = gate["held_out_forget"]  # out-of-fold when the held-out inputs were enough to fold
    opened = (held_out["cross_validated"] if held_out["cross_validated"]["n"] else held_out["in_sample"])["frac_open"]
    assert text_of(browser, "#gate-forget .stat-value") == f"{100 * opened:.1f} %"
    assert "(calibrated gate)" in text_of(browser, "#unlearn-report h2")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#gate-distribution tbody tr")]
    assert any(r.startswith("held-out forget, in-sample") for r in rows)
    assert any(r.startswith("paper gate: reference") for r in rows)

    open_page(browser, url, token, "#/adapters/card/merged@1")
    wait_for(browser, lambda d: d.find_elements(By.ID, "merge-report"), what="merge report")
    assert "lego" in text_of(browser, "#merge-report h2")
    experts = browser.find_elements(By.CSS_SELECTOR, "#merge-experts tbody tr")
    assert len(experts) == len(metrics("adapters/card/merged/versions/1")["merge"]["modules"]) > 0

    open_page(browser, url, token, "#/generators/card/gen@1")
    size = wait_for(browser, lambda d: d.find_elements(By.ID, "size-ratio"), what="size")[0].text
    assert "MB against" in size and "%" in size
    assert int(browser.find_element(By.ID, "generator-loss").get_attribute("data-points")) == 6
    fidelity = metrics("generators/card/gen/versions/1")["generator"]["member_fidelity"]
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#member-fidelity tbody tr")]
    assert [r.split()[0] for r in rows] == [f["member"] for f in fidelity] == ["card/shift-1@1", "card/shift-2@1"]

    open_page(browser, url, token, "#/adapters/card/gen-out@1")
    wait_for(browser, lambda d: d.find_elements(By.ID, "generate-report"), what="generate report")
    chosen = metrics("adapters/card/gen-out/versions/1")["generate"]["chosen"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#candidate-scores tr")
    assert len(rows) == 3 and "(chosen)" in rows[chosen].text

    open_page(browser, url, token, "#/adapters/card/bool-kit@1")
    accuracy = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#kit-accuracy .stat-value"),
                        what="kit accuracy")[0].text
    assert accuracy.endswith("%")


def test_metric_table_wraps_long_keys_and_draws_curves_as_charts(browser, hub, made):
    url, token, _ = hub
    open_page(browser, url, token, "#/adapters/card/bool@1")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#metrics [data-key="eval/word_sorting/exact_match"]'),
             what="evaluate's score in the metrics table")
    # no key cell is wider than its box (it would overprint its value), and every key ends left of its value
    clipped = browser.execute_script("""
        return [...document.querySelectorAll('#metrics tr')].filter(tr => {
          const th = tr.querySelector('th'), td = tr.querySelector('td');
          return th.scrollWidth > th.clientWidth || th.getBoundingClientRect().right > td.getBoundingClientRect().left + 1;
        }).map(tr => tr.dataset.key);""")
    assert clipped == []
    assert int(browser.find_element(By.ID, "chart-metric-train_loss_curve").get_attribute("data-points")) == 6
    assert not browser.find_elements(By.CSS_SELECTOR, '#metrics [data-key="train/loss_curve"]')


def test_lineage_draws_arrowheads_bases_and_one_label_per_edge_that_never_overlaps(browser, hub, made, shots):
    url, token, _ = hub
    open_page(browser, url, token, "#/adapters/card/bool@1")  # fans out to a kit, its seeds, a transfer, ...
    graph = wait_for(browser, lambda d: d.find_elements(By.ID, "lineage-graph"), what="graph")[0]
    edges = browser.find_elements(By.CSS_SELECTOR, "#lineage-graph path.edge")
    assert int(graph.get_attribute("data-edges")) == len(edges) >= 5
    assert all(e.get_attribute("marker-end") == "url(#arrow)" for e in edges)
    assert browser.find_elements(By.CSS_SELECTOR, "#lineage-graph defs marker#arrow path")
    labels = browser.execute_script("""
        return [...document.querySelectorAll('#lineage-graph .edge-label')].map(t => {
          const b = t.getBoundingClientRect(); return [t.textContent, b.left, b.top, b.right, b.bottom]; });""")
    assert len(labels) == len(edges)
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            apart = a[3] <= b[1] or b[3] <= a[1] or a[4] <= b[2] or b[4] <= a[2]
            assert apart, f"labels {a[0]!r} and {b[0]!r} overlap"
    bases = {n.get_attribute("data-node"): n.get_attribute("data-base")
             for n in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph g.node")}
    assert bases["card/bool@1"] == BASE and bases["card/bool-moved@1"] == TARGET["name"]
    assert "on " + TARGET["name"] in text_of(browser, '#lineage-graph [data-node="card/bool-moved@1"]')
    full_shot(browser, shots / "lineage.png")


def test_job_list_filters_by_state_and_kind_from_the_url_and_from_its_selects(browser, hub, made, shots):
    url, token, _ = hub
    open_page(browser, url, token, "#/jobs?state=failed&kind=train")

    def rows(d):  # once the filtered view is up (the page first shows #/jobs unfiltered)
        if d.find_element(By.ID, "filter-state").get_attribute("value") != "failed":
            return None
        return [(r.get_attribute("data-job"), r.get_attribute("data-state"), r.get_attribute("data-kind"))
                for r in d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-job]")]

    rows = wait_for(browser, rows, what="filtered rows")
    assert {r[0] for r in rows} == {made["failed"]} and all(r[1:] == ("failed", "train") for r in rows)
    assert Select(browser.find_element(By.ID, "filter-state")).first_selected_option.text == "failed"
    assert Select(browser.find_element(By.ID, "filter-kind")).first_selected_option.text == "train"
    assert overflow(browser) <= 0
    full_shot(browser, shots / "jobs-failed-train.png")

    Select(browser.find_element(By.ID, "filter-state")).select_by_value("succeeded")
    wait_for(browser, lambda d: d.current_url.endswith("#/jobs?state=succeeded&kind=train"), what="url follows")
    ids = wait_for(browser, lambda d: {r.get_attribute("data-job") for r in d.find_elements(
        By.CSS_SELECTOR, "#jobs tr[data-job]")} or None, what="succeeded train jobs")
    assert {made["train"], made["shift-1"], made["shift-2"]} <= ids and made["failed"] not in ids

    open_page(browser, url, token, "#/jobs?kind=merge")
    kinds = wait_for(browser, lambda d: d.find_element(By.ID, "filter-kind").get_attribute("value") == "merge" and {
        r.get_attribute("data-kind") for r in d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-job]")}, what="merge jobs")
    assert kinds == {"merge"}


def test_job_list_pages_by_25_with_links_that_keep_the_filter(browser, hub, made, shots):
    url, token, _ = hub
    ids = [submit(url, token, {"kind": "noop", "params": {"seconds": 0}}) for _ in range(27)]
    open_page(browser, url, token, "#/jobs?kind=noop")
    wait_for(browser, lambda d: d.find_element(By.ID, "filter-kind").get_attribute("value") == "noop"
             and len(d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-job]")) == 25, what="page 1")
    nxt = browser.find_element(By.ID, "page-next")
    assert nxt.is_displayed() and not browser.find_element(By.ID, "page-prev").is_displayed()
    assert nxt.get_dom_attribute("href").startswith("#/jobs?kind=noop&at=")  # the cursor of page 2
    nxt.click()
    rows = wait_for(browser, lambda d: [r.get_attribute("data-job") for r in d.find_elements(
        By.CSS_SELECTOR, "#jobs tr[data-job]")] if "&at=" in d.current_url else None, what="page 2")
    assert len(rows) >= 2 and set(ids[:2]) <= set(rows)  # newest first: the two oldest are on page 2
    assert not browser.find_element(By.ID, "page-next").is_displayed()
    assert browser.find_element(By.ID, "page-prev").get_dom_attribute("href") == "#/jobs?kind=noop"
    assert text_of(browser, "#page-no") == "page 2"
    open_page(browser, url, token, "#/jobs")
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs tr[data-job]")) == 25, what="all jobs")
    full_shot(browser, shots / "jobs.png")
    for job_id in ids:
        finished(url, token, job_id, timeout=120)


def test_job_pages_show_only_the_panels_that_apply_and_style_failures(browser, hub, made, shots):
    url, token, _ = hub
    open_page(browser, url, token, f"#/jobs/{made['train']}")
    wait_for(browser, lambda d: d.find_elements(By.ID, "loss-chart")
             and int(d.find_element(By.ID, "loss-chart").get_attribute("data-points")) == 6, what="loss curve")
    assert browser.find_element(By.ID, "curves-card").is_displayed()
    assert overflow(browser) <= 0

    open_page(browser, url, token, f"#/jobs/{made['evaluate']}")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#result tr"), what="scores")
    time.sleep(1.5)  # the event stream has been read: an evaluate job reports no curves, so no curves panel
    assert not browser.find_element(By.ID, "curves-card").is_displayed()
    assert "Loss" not in text_of(browser, "#view")
    assert overflow(browser) <= 0

    open_page(browser, url, token, f"#/jobs/{made['failed']}")
    wait_for(browser, lambda d: d.find_elements(By.ID, "job-error"), what="error shown")
    assert not browser.find_elements(By.ID, "results") and "none yet" not in text_of(browser, "#job-head")
    bar = browser.find_element(By.CSS_SELECTOR, "#job-head .progress .bar")
    assert bar.value_of_css_property("background-color") == "rgba(201, 42, 42, 1)"  # --bad
    assert overflow(browser) <= 0 and unfolded_json(browser) == []
    full_shot(browser, shots / "job-failed.png")


def test_running_job_shows_step_n_of_m_and_eta_and_cancel_asks_first(browser, hub, made, shots):
    url, token, _ = hub
    job_id = submit(url, token, {"kind": "train", "output": "card/long", "params": {
        "base": BASE, "task": TASK, "steps": 3000, "rank": 2, "batch_size": 2}})
    open_page(browser, url, token, f"#/jobs/{job_id}")
    steps = wait_for(browser, lambda d: re.search(r"step (\d+) of 3000 · ETA \S+", text_of(d, "#job-steps")),
                     timeout=120, what="step N of M and ETA")
    assert 0 < int(steps.group(1)) < 3000
    log = text_of(browser, "#log")
    assert "[metric]" not in log and "[progress] stage: training" in log
    full_shot(browser, shots / "job-running.png")

    browser.find_element(By.ID, "cancel").click()  # dismissed: nothing happens
    alert = wait_for(browser, lambda d: d.switch_to.alert, what="confirm")
    assert "Cancel train job" in alert.text
    alert.dismiss()
    time.sleep(1)
    state = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()["state"]
    assert state == "running"
    wait_for(browser, lambda d: d.find_element(By.ID, "cancel").click() or True, what="cancel button")
    wait_for(browser, lambda d: d.switch_to.alert, what="confirm").accept()
    assert finished(url, token, job_id, timeout=60)["state"] == "cancelled"
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#job-head .progress").get_attribute("data-state")
             == "cancelled", what="cancelled shown")
    # read in one script: the header re-renders live, so an element found in one call can be stale in the next
    colour = browser.execute_script(
        "return getComputedStyle(document.querySelector('#job-head .progress .bar')).backgroundColor")
    assert colour not in (ACCENT_BLUE, ACCENT_BLUE.replace("rgb", "rgba").replace(")", ", 1)"))
    assert not browser.find_elements(By.ID, "results") and overflow(browser) <= 0
    full_shot(browser, shots / "job-cancelled.png")


def test_lists_fit_1280_px(browser, hub, made):
    url, token, _ = hub
    for page, row in (("#/adapters", "[data-adapter]"), ("#/jobs", "tr[data-job]"), ("#/datasets", "[data-dataset]"),
                      ("#/generators", "[data-generator]"), ("#/bases", "[data-base]"), ("#/workers", "[data-worker]")):
        open_page(browser, url, token, page)
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row), what=f"{page} rows")
        assert overflow(browser) <= 0, f"{page} scrolls sideways by {overflow(browser)} px"


def test_wrong_token_is_refused_before_anything_says_saved(browser, hub, registered):
    url, token, _ = hub
    open_page(browser, url, token, "#/adapters")
    box = browser.find_element(By.ID, "token")
    box.clear()
    box.send_keys("ada_not-a-real-token")
    box.submit()
    flash = wait_for(browser, lambda d: d.find_element(By.ID, "flash").is_displayed()
                     and d.find_element(By.ID, "flash"), what="answer")
    assert flash.text.startswith("401") and "saved" not in flash.text.replace("nothing saved", "")
    assert browser.execute_script("return localStorage.getItem('adaptarium-token');") == token

    box.clear()
    box.send_keys(token)
    box.submit()
    wait_for(browser, lambda d: d.find_element(By.ID, "flash").text == "token saved", what="good token saved")
