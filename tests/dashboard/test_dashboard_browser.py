"""The dashboard driven in headless Chromium against a real hub (uvicorn, PostgreSQL, local blobs) and, for the job
flow, a real Celery worker process on Redis db 6 (both started once, in conftest.py).

These tests click through the page the way a person would, so they catch what the API tests cannot: a view that
renders nothing because it misreads a response, a progress bar that never moves, a link that leads nowhere.
Screenshots go to $ADAPTARIUM_SCREENSHOT_DIR or the pytest tmp dir, never into the repository.
"""
from __future__ import annotations

import io

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.dashboard.driving import BASE, full_shot, open_page, page_errors, text_of, wait_for


# ---------- registry pages ----------

def test_adapter_list_links_to_a_page_with_versions_files_and_working_downloads(browser, hub, registered, shots):
    url, token, _ = hub
    open_page(browser, url, token, "#/adapters")
    link = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-adapter="dash/uploaded"] a'),
                    what="uploaded adapter listed")[0]
    link.click()
    wait_for(browser, lambda d: "Version 1" in text_of(d, "#view"), what="version card")
    assert browser.find_elements(By.CSS_SELECTOR, '#versions [data-version="1"]')
    downloads = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#files a")}
    assert set(downloads) == set(registered)
    for name, href in downloads.items():
        got = httpx.get(href, headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200 and got.content == registered[name], name
    graph = wait_for(browser, lambda d: d.find_elements(By.ID, "lineage-graph"), what="lineage graph")[0]
    assert graph.get_attribute("data-edges") == "0"
    browser.save_screenshot(str(shots / "adapter.png"))
    assert page_errors(browser) == []


def test_bases_page_lists_the_registered_base_and_filters_adapters_by_it(browser, hub, registered):
    url, token, _ = hub
    open_page(browser, url, token, "#/bases")
    row = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-base="{BASE}"]'), what="base row")[0]
    assert "llama" in row.text
    row.find_element(By.LINK_TEXT, "adapters").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-adapter="dash/uploaded"]'), what="filtered")


def test_missing_adapter_shows_the_api_error_instead_of_a_blank_page(browser, hub, registered):
    url, token, _ = hub
    open_page(browser, url, token, "#/adapters/dash/no-such-adapter")
    error = wait_for(browser, lambda d: d.find_elements(By.ID, "load-error"), what="error shown")[0]
    assert error.text.startswith("404")


# ---------- the job flow ----------

def test_train_job_from_the_form_reaches_100_percent_and_links_to_its_result(browser, hub, registered, worker, shots):
    url, token, _ = hub
    open_page(browser, url, token, "#/new")
    wait_for(browser, lambda d: d.find_elements(By.ID, "kind"), what="form")
    Select(browser.find_element(By.ID, "kind")).select_by_value("train")  # fields come from GET /job-kinds
    wait_for(browser, lambda d: d.find_elements(By.ID, "p-base"), what="train fields")
    Select(browser.find_element(By.ID, "p-base")).select_by_value(BASE)  # a pick list of the registered bases
    browser.find_element(By.CSS_SELECTOR, "details.advanced > summary").click()  # batch_size is an advanced param
    for field, value in {"p-task": "builtin:boolean_expressions?n=16&seed=0", "p-steps": "6",
                         "p-rank": "2", "p-batch_size": "2", "output": "dash/trained"}.items():
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "submit-job").click()

    wait_for(browser, lambda d: "#/jobs/" in d.current_url, what="job page opened")
    job_id = browser.current_url.rsplit("/", 1)[-1]
    seen = set()

    def finished(d):
        bar = d.find_elements(By.CSS_SELECTOR, "#job-head .progress")
        if bar:
            seen.add(int(bar[0].get_attribute("data-progress")))
        state = d.find_elements(By.CSS_SELECTOR, "#job-head [data-state]")
        return state and state[0].get_attribute("data-state") in ("succeeded", "failed", "cancelled")

    wait_for(browser, finished, timeout=240, what="job finished")
    state = browser.find_element(By.CSS_SELECTOR, "#job-head [data-state]").get_attribute("data-state")
    assert state == "succeeded", text_of(browser, "#view")
    assert max(seen) == 100
    wait_for(browser, lambda d: int(d.find_element(By.ID, "loss-chart").get_attribute("data-points") or 0) > 0,
             what="loss curve drawn")
    log = text_of(browser, "#log")  # per-step losses go to the chart, not one log line each
    assert "training on" in log and "[metric]" not in log and "loss =" not in log
    assert len(log.splitlines()) < 15
    browser.save_screenshot(str(shots / "job.png"))

    api_job = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
    (result,) = api_job["results"]
    # the job header re-renders every second; retry the click if the link was replaced under us
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#results a.ref").click() or True, what="result link")
    version = result.split("@")[1]
    wait_for(browser, lambda d: d.find_elements(By.ID, "version-title")
             and d.find_element(By.ID, "version-title").text == f"Version {version}", what="result version page")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'#lineage-graph [data-node="{result}"]'),
             what="lineage graph drawn")  # fetched after the version card
    browser.save_screenshot(str(shots / "result.png"))

    # evaluate it from the same generated form: the scores land on the version and in the job's result
    open_page(browser, url, token, "#/new?kind=evaluate")
    pick = wait_for(browser, lambda d: d.find_elements(By.ID, "pick-dash-trained"), what="trained adapter offered")[0]
    pick.click()
    browser.find_element(By.ID, "p-task").send_keys("builtin:boolean_expressions?n=8&test=4&seed=1")
    browser.find_element(By.ID, "submit-job").click()
    wait_for(browser, lambda d: "#/jobs/" in d.current_url and d.current_url.rsplit("/", 1)[-1] != job_id,
             what="evaluate job page")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#result tr"), timeout=120, what="result shown")
    assert "eval/boolean_expressions/exact_match" in text_of(browser, "#result")

    open_page(browser, url, token, "#/jobs")
    # the list re-renders every 1.5 s: read the row in one go inside the retrying wait
    row = wait_for(browser, lambda d: [(r.find_element(By.CSS_SELECTOR, ".progress").get_attribute("data-progress"),
                                        r.text) for r in d.find_elements(By.CSS_SELECTOR, f'[data-job="{job_id}"]')],
                   what="job row")[0]
    assert row[0] == "100" and result in row[1]


def test_new_job_form_shows_essential_params_first_with_descriptions_and_pick_lists(browser, hub, registered, shots):
    """The form is generated from GET /job-kinds: every kind's essential params come first and the rest are folded
    away, each param shows its declared description, bases are a pick list, task fields offer the built-in tasks,
    and a kind whose inputs share one base offers them one base at a time, each input's version from a list."""
    url, token, _ = hub
    kinds = {k["name"]: k for k in httpx.get(f"{url}/api/v1/job-kinds").json()["items"]}
    page_errors(browser)  # drain what earlier tests left in the browser log (e.g. the deliberate 404 page)
    open_page(browser, url, token, "#/new")
    wait_for(browser, lambda d: d.find_elements(By.ID, "kind"), what="form")
    for name, kind in kinds.items():
        if name == "noop":
            continue
        Select(browser.find_element(By.ID, "kind")).select_by_value(name)
        props = kind["params_schema"]["properties"]
        shown = wait_for(browser, lambda d: d.execute_script("""
            const f = document.getElementById('kind-fields');
            return [...f.querySelectorAll('[data-param]')].map(e => [e.dataset.param,
              !!e.closest('details.advanced'), e.checkVisibility(),
              (document.getElementById('p-' + e.dataset.param + '-help') || {}).textContent || '']);"""),
            what=f"{name} fields")
        assert [p for p, *_ in shown] == [p for p in props if p in kind["essential"]] + \
            [p for p in props if p not in kind["essential"]], name  # essential first, then advanced
        for param, folded, visible, help_text in shown:
            assert folded == (param not in kind["essential"]) and visible == (not folded), (name, param)
            assert help_text == props[param]["description"], (name, param)
    Select(browser.find_element(By.ID, "kind")).select_by_value("train")
    wait_for(browser, lambda d: d.find_elements(By.ID, "p-steps-help"), what="train fields")
    assert BASE in [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "p-base")).options]
    tasks = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#p-task-list option")]
    assert tasks == [f"builtin:{t}" for t in kinds["train"]["builtin_tasks"]] and len(tasks) == 6
    assert browser.find_element(By.ID, "p-steps-help").text == "optimizer steps"
    browser.find_element(By.CSS_SELECTOR, "details.advanced > summary").click()
    assert browser.find_element(By.ID, "p-grad_accum").is_displayed()

    Select(browser.find_element(By.ID, "kind")).select_by_value("merge")
    wait_for(browser, lambda d: d.find_elements(By.ID, "input-base"), what="merge inputs")
    assert [o.text for o in Select(browser.find_element(By.ID, "input-base")).options] == [BASE]
    pick = browser.find_element(By.ID, "pick-dash-uploaded")
    assert pick.is_displayed()
    versions = Select(pick.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "select.ref"))
    assert versions.first_selected_option.text == "1"
    full_shot(browser, shots / "new-job-form.png")
    assert page_errors(browser) == []


def test_an_inputs_version_list_leaves_out_its_yanked_versions(browser, hub, registered):
    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}
    for _ in range(3):  # the registered bytes again: three versions of one adapter
        res = httpx.post(f"{url}/api/v1/adapters/dash/picked/versions", headers=auth, data={"base": BASE},
                         files={k: (k, io.BytesIO(v)) for k, v in registered.items()})
        assert res.status_code == 201, res.text
    assert httpx.delete(f"{url}/api/v1/adapters/dash/picked/versions/2", headers=auth).status_code == 200
    open_page(browser, url, token, "#/new")
    wait_for(browser, lambda d: d.find_elements(By.ID, "kind"), what="form")
    Select(browser.find_element(By.ID, "kind")).select_by_value("merge")
    pick = wait_for(browser, lambda d: d.find_elements(By.ID, "pick-dash-picked"), what="merge inputs")[0]
    versions = Select(pick.find_element(By.XPATH, "..").find_element(By.CSS_SELECTOR, "select.ref"))
    assert [o.text for o in versions.options] == ["3", "1"]


def test_merge_job_from_the_form_publishes_a_merged_version_with_lineage(browser, hub, registered, worker, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from lora.bases import tiny_model

    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}
    model, _ = tiny_model("llama")
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "second")
    files = {n: (n, (tmp_path / "second" / n).read_bytes()) for n in ("adapter_config.json", "adapter_model.safetensors")}
    res = httpx.post(f"{url}/api/v1/adapters/dash/second/versions", headers=auth, data={"base": BASE}, files=files)
    assert res.status_code == 201, res.text

    open_page(browser, url, token, "#/new")
    wait_for(browser, lambda d: d.find_elements(By.ID, "kind"), what="form")
    Select(browser.find_element(By.ID, "kind")).select_by_value("merge")
    for ref in ("dash-uploaded", "dash-second"):
        wait_for(browser, lambda d: d.find_elements(By.ID, f"pick-{ref}"), what=f"{ref} offered")[0].click()
    Select(browser.find_element(By.ID, "p-method")).select_by_visible_text("lego")
    browser.find_element(By.CSS_SELECTOR, "details.advanced > summary").click()  # rank is an advanced param
    rank = browser.find_element(By.ID, "p-rank")
    rank.clear()
    rank.send_keys("4")
    browser.find_element(By.ID, "output").send_keys("dash/merged")
    browser.find_element(By.ID, "submit-job").click()
    wait_for(browser, lambda d: "#/jobs/" in d.current_url, what="job page opened")
    job_id = browser.current_url.rsplit("/", 1)[-1]
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#job-head [data-state]").get_attribute("data-state")
             in ("succeeded", "failed"), timeout=120, what="merge finished")
    job = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers=auth).json()
    assert job["state"] == "succeeded", job
    assert job["kind"] == "merge" and job["params"]["method"] == "lego" and job["params"]["rank"] == 4
    lineage = httpx.get(f"{url}/api/v1/adapters/dash/merged/versions/1/lineage", headers=auth).json()
    assert sorted(p["version"] for p in lineage["parents"]) == ["dash/second@1", "dash/uploaded@1"]

    # the lineage graph links each parent to its own page, and that page links back to the merged child
    page_errors(browser)  # drain what earlier tests left in the browser log (e.g. the deliberate 404 page)
    open_page(browser, url, token, "#/adapters/dash/merged@1")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#lineage-graph [data-node="dash/second@1"] a'),
             what="parent node linked")
    hrefs = {n.get_attribute("data-node"): n.find_element(By.TAG_NAME, "a").get_dom_attribute("href")
             for n in browser.find_elements(By.CSS_SELECTOR, "#lineage-graph g.node:not(.self)")}
    assert set(hrefs) == {"dash/second@1", "dash/uploaded@1"}
    assert hrefs == {"dash/second@1": "#/adapters/dash/second@1", "dash/uploaded@1": "#/adapters/dash/uploaded@1"}
    edges = browser.find_elements(By.CSS_SELECTOR, "#lineage-graph path.edge")
    assert [e.get_attribute("data-relation") for e in edges] == ["merged_from", "merged_from"]
    browser.find_element(By.CSS_SELECTOR, '#lineage-graph [data-node="dash/second@1"] a').click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#lineage-graph [data-node="dash/merged@1"] a'),
             what="child linked back from the parent's page")
    assert page_errors(browser) == []


def test_try_it_panel_generates_and_shows_the_gate_weight_of_an_unlearned_version(browser, hub, registered, worker,
                                                                                   shots):
    import time

    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}
    fast = {"steps": 4, "rank": 2, "lora_alpha": 4, "detector_steps": 3, "detector_rank": 2, "batch_size": 4,
            "detector_batch_size": 4}
    job = httpx.post(f"{url}/api/v1/jobs", headers=auth, json={
        "kind": "unlearn", "inputs": ["dash/uploaded@1"], "output": "dash/forgetful",
        "params": {"forget": "builtin:boolean_expressions?n=12&test=4&seed=2", **fast}}).json()
    deadline = time.monotonic() + 240
    while (state := httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=auth).json()["state"]) not in (
            "succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "succeeded"

    open_page(browser, url, token, "#/adapters/dash/forgetful@1")
    wait_for(browser, lambda d: d.find_elements(By.ID, "try-run"), what="try-it panel")
    assert browser.find_element(By.ID, "unlearn-report") and browser.find_element(By.ID, "orth-loss")
    browser.find_element(By.ID, "try-prompt").send_keys("True and False = ")
    browser.find_element(By.ID, "try-run").click()
    weight = wait_for(browser, lambda d: d.find_elements(By.ID, "try-gate-weight"), timeout=120, what="gate weight")[0]
    value = float(weight.text.removeprefix("gate weight "))
    assert 0 <= value <= 1
    browser.save_screenshot(str(shots / "try-it.png"))

    open_page(browser, url, token, "#/adapters/dash/uploaded@1")  # a plain adapter: a completion, no gate
    wait_for(browser, lambda d: d.find_elements(By.ID, "try-run"), what="try-it panel")
    assert not browser.find_elements(By.ID, "try-gate") and not browser.find_elements(By.ID, "unlearn-report")
    browser.find_element(By.ID, "try-prompt").send_keys("True or False = ")
    browser.find_element(By.ID, "try-run").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#try-output .completion"), timeout=120,
             what="completion")
    assert not browser.find_elements(By.ID, "try-gate-weight")
    assert page_errors(browser) == []


def test_a_routed_merge_page_lists_its_experts_and_try_it_shows_the_routing_weights(browser, hub, registered, worker,
                                                                                     tmp_path, shots):
    import time

    import torch
    from peft import LoraConfig, get_peft_model

    from lora.bases import tiny_model

    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}
    model, _ = tiny_model("llama")
    torch.manual_seed(3)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     init_lora_weights=False)).save_pretrained(tmp_path / "adder")
    files = {n: (n, (tmp_path / "adder" / n).read_bytes()) for n in ("adapter_config.json", "adapter_model.safetensors")}
    res = httpx.post(f"{url}/api/v1/adapters/dash/adder/versions", headers=auth, data={"base": BASE}, files=files)
    assert res.status_code == 201, res.text
    sources = ["dash/uploaded@1", "dash/adder@1"]
    job = httpx.post(f"{url}/api/v1/jobs", headers=auth, json={
        "kind": "merge", "inputs": sources, "output": "dash/routed",
        "params": {"method": "route", "fit": ["builtin:caesar_shift?n=6", "builtin:add_constant?n=6"]}}).json()
    deadline = time.monotonic() + 240
    while (state := httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=auth).json()["state"]) not in (
            "succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert state == "succeeded"

    page_errors(browser)  # drain what earlier tests left in the browser log
    open_page(browser, url, token, "#/adapters/dash/routed@1")
    rows = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#route-experts tbody tr"), what="experts")
    assert [r.find_element(By.CSS_SELECTOR, "a.ref").text for r in rows] == sources
    assert "route" in text_of(browser, "#merge-report h2") and "examples router" in text_of(browser, "#merge-report h2")
    assert browser.find_element(By.ID, "try-route") and not browser.find_elements(By.ID, "try-gate")
    browser.find_element(By.ID, "try-prompt").send_keys("add: 123 =")
    browser.find_element(By.ID, "try-run").click()
    wait_for(browser, lambda d: d.find_elements(By.ID, "try-route-weights"), timeout=120, what="routing weights")
    weights = {w.get_attribute("data-expert"): float(w.text.rsplit(" ", 1)[1])
               for w in browser.find_elements(By.CSS_SELECTOR, "#try-route-weights .route-weight")}
    assert set(weights) == {"0", "1"} and abs(sum(weights.values()) - 1) < 0.01 and weights["1"] > weights["0"]
    assert "dash/adder@1" in text_of(browser, "#try-route-weights")
    browser.save_screenshot(str(shots / "try-it-routed.png"))
    assert page_errors(browser) == []


def test_generator_page_shows_its_size_and_generates_an_adapter_from_the_form(browser, hub, registered, worker, shots):
    import time

    url, token, _ = hub
    auth = {"Authorization": f"Bearer {token}"}

    def run(body):
        job = httpx.post(f"{url}/api/v1/jobs", headers=auth, json=body).json()
        deadline = time.monotonic() + 240
        while (done := httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=auth).json())["state"] not in (
                "succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert done["state"] == "succeeded", done
        return done

    for k in (1, 2):
        run({"kind": "train", "output": f"dash/shift-{k}", "params": {
            "base": BASE, "task": f"builtin:caesar_shift?k={k}&n=8&test=2", "steps": 4, "rank": 2,
            "checkpoint_every": 2}})
    run({"kind": "train_generator", "inputs": ["dash/shift-1@1", "dash/shift-2@1"], "output": "dash/shift-gen",
         "params": {"condition": "text", "descriptions": ["shift by one", "shift by two"], "epochs": 10,
                    "latent": 4, "basis": 4}})

    open_page(browser, url, token, "#/generators/dash/shift-gen@1")
    size = wait_for(browser, lambda d: d.find_elements(By.ID, "size-ratio"), what="generator report")[0]
    assert "MB against" in size.text and "%" in size.text
    assert int(browser.find_element(By.ID, "generator-loss").get_attribute("data-points")) == 10
    browser.save_screenshot(str(shots / "generator.png"))
    browser.find_element(By.ID, "generate-link").click()
    box = wait_for(browser, lambda d: d.find_elements(By.ID, "pick-dash-shift-gen"), what="generator preselected")[0]
    wait_for(browser, lambda d: box.is_selected(), what="checked")
    browser.find_element(By.ID, "p-description").send_keys("shift by three")
    browser.find_element(By.ID, "output").send_keys("dash/shift-3")
    browser.find_element(By.ID, "submit-job").click()
    wait_for(browser, lambda d: "#/jobs/" in d.current_url, what="job page opened")
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#job-head [data-state]").get_attribute("data-state")
             in ("succeeded", "failed"), timeout=120, what="generate finished")
    assert browser.find_element(By.CSS_SELECTOR, "#job-head [data-state]").get_attribute("data-state") == "succeeded"
    link = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '#results a.ref[data-object="adapter"]'),
                    what="result link")[0]
    assert link.text == "dash/shift-3@1"


# ---------- the fleet ----------

def test_workers_page_lists_the_worker_and_links_to_the_job_it_runs_whose_page_names_the_worker(browser, hub, worker,
                                                                                                 shots):
    import socket

    url, token, _ = hub
    name = f"{socket.gethostname()}:{worker.pid}"  # the solo pool runs jobs in the worker process itself
    res = httpx.post(f"{url}/api/v1/jobs", headers={"Authorization": f"Bearer {token}"},
                     json={"kind": "noop", "params": {"seconds": 90}})  # still running when clicked; cancelled
    assert res.status_code == 202, res.text
    job_id = res.json()["id"]
    try:
        open_page(browser, url, token, "#/workers")
        row = f'#workers [data-worker="{name}"]'
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, f'{row} a.current-job[href="#/jobs/{job_id}"]'),
                 timeout=120, what="the worker listed with its running job")
        # the table re-renders every 2 s: read the row in one go inside the retrying wait
        status, device, text = wait_for(browser, lambda d: [
            (r.get_attribute("data-status"), r.find_element(By.CSS_SELECTOR, ".device").text, r.text)
            for r in d.find_elements(By.CSS_SELECTOR, row)], what="row")[0]
        assert status == "online" and device.startswith("cpu") and "cpu, gpu" in text
        assert browser.find_element(By.CSS_SELECTOR, "nav a.active").get_attribute("data-nav") == "workers"
        browser.save_screenshot(str(shots / "workers.png"))
        wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, f'{row} a.current-job').click() or True,
                 what="current job link")  # the table re-renders every 2 s: retry if the link was replaced
        wait_for(browser, lambda d: d.find_elements(By.ID, "job-worker") and text_of(d, "#job-worker") == name,
                 timeout=60, what="job page names the worker")
        assert browser.current_url.endswith(f"#/jobs/{job_id}")
        assert text_of(browser, "#job-device") == "cpu (float32)"
        assert page_errors(browser) == []
    finally:  # free the module's worker for the other tests
        httpx.post(f"{url}/api/v1/jobs/{job_id}/cancel", headers={"Authorization": f"Bearer {token}"})
