"""MLflow's own web UI through the company service, in a real browser (Debian's chromium, driven by
playwright) after a real sign-in at the test identity provider, for each kind of user:

- alice, the experiment's manager, and bob, a member of her group (editor through the group):
  experiments list, runs table, charts, run page (overview, metrics, artifacts with an image
  preview), compare, models, a model version, traces, the account page, and the run link MLflow's
  client prints (no `?workspace=`), opened with a session and without one;
- carol, a reader of the registered model only: models, the model, its version (with the schema
  from its MLmodel) and the run that produced it, whose experiment stays hidden;
- dave, of another organisation: the same links show none of it, in no page and no answer.

Every page must render (its content is waited for) with no failed request the UI depends on (every
answer of the service is recorded: no 4xx or 5xx for the permitted users); screenshots of every
page are kept under the test results folder (INFINSTOR_TEST_RESULTS, by default .test-results/,
the folder CI keeps) in service-webui/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from idp_fixture import IDP_PASSWORD, LAB_CLIENT
from service_fixture import CompanyServer, user_token

CHROMIUM = os.environ.get("INFINSTOR_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
RESULTS = Path(os.environ.get("INFINSTOR_TEST_RESULTS") or Path(__file__).resolve().parent.parent / ".test-results") / "service-webui"

playwright_api = pytest.importorskip("playwright.async_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no browser at {CHROMIUM}"),
]

EXPERIMENT, MODEL = "webui-experiment", "webui-model"
MLMODEL = b"""artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pyfunc.model
    python_version: 3.11.0
mlflow_version: 3.17.2
signature:
  inputs: '[{"type": "double", "name": "sepal_width", "required": true}]'
  outputs: '[{"type": "long", "required": true}]'
"""


def png(width: int = 96, height: int = 64) -> bytes:
    """A real PNG (a colour gradient), as a plot a run would log."""
    rows = b"".join(b"\x00" + b"".join(bytes([x * 255 // width, y * 255 // height, 160]) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def ok(response: requests.Response) -> dict:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


@dataclass
class World:
    experiment_id: str
    runs: list[str]  # run ids; runs[0] logged the plot and produced the model version
    trace_id: str
    printed_link: str  # what MLflow's client printed for a run it logged
    printed_run: str


@pytest.fixture(scope="module")
def ui_service(idp, tmp_path_factory):
    server = CompanyServer(
        tmp_path_factory.mktemp("webui"),
        idp.issuer,
        config={
            "browser": {
                "client_id": LAB_CLIENT,
                "redirect_path": "/infinstor/api/auth/callback",
                "scopes": "openid profile email groups org offline_access",
                "session_secret": "webui-session-secret-0123456789abcdef",
            }
        },
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world(ui_service, idp) -> World:
    """alice's experiment (her group vision edits it) with two runs, a plot, a model version of
    run 0 readable by carol's group; and a run and a trace logged by MLflow's own client."""
    server, alice = ui_service, user_token(idp, "alice")
    M = server.mlflow
    experiment_id = ok(M("POST", "experiments/create", alice, json={"name": EXPERIMENT}))["experiment_id"]
    runs = []
    for number in range(2):
        run = ok(
            M(
                "POST",
                "runs/create",
                alice,
                json={"experiment_id": experiment_id, "run_name": f"webui-run-{number}", "start_time": 1_700_000_000_000},
            )
        )["run"]["info"]
        metrics = [
            {"key": "accuracy", "value": 0.5 + 0.1 * step + 0.05 * number, "timestamp": 1_700_000_000_000 + step, "step": step}
            for step in range(5)
        ]
        ok(
            M(
                "POST",
                "runs/log-batch",
                alice,
                json={"run_id": run["run_id"], "metrics": metrics, "params": [{"key": "learning_rate", "value": f"0.0{number + 1}"}]},
            )
        )
        runs.append(run)
    root = runs[0]["artifact_uri"][len("mlflow-artifacts:/") :]
    for name, data in (("plot.png", png()), ("model/MLmodel", MLMODEL)):
        assert server.call("PUT", f"api/2.0/mlflow-artifacts/artifacts/{root}/{name}", alice, data=data).status_code == 200
    ok(M("POST", "registered-models/create", alice, json={"name": MODEL}))
    ok(
        M(
            "POST",
            "model-versions/create",
            alice,
            json={"name": MODEL, "source": f"{runs[0]['artifact_uri']}/model", "run_id": runs[0]["run_id"]},
        )
    )
    ok(
        server.infinstor(
            "POST",
            "permissions",
            alice,
            json={
                "resource_type": "registered_model",
                "resource_id": MODEL,
                "principal_type": "group",
                "principal": "nlp",
                "role": "reader",
            },
        )
    )
    # MLflow's client, as alice with her token: a run (it prints a link to each run it ends) and a trace.
    script = (
        "import mlflow\n"
        f"mlflow.set_tracking_uri({server.uri!r})\n"
        f"mlflow.set_experiment(experiment_id={experiment_id!r})\n"
        "with mlflow.start_run(run_name='webui-printed-run'):\n"
        "    mlflow.log_metric('accuracy', 0.9)\n"
        "with mlflow.start_span(name='webui-trace') as span:\n"
        "    span.set_inputs({'question': 'webui-question'})\n"
        "    span.set_outputs({'answer': 'webui-answer'})\n"
        "mlflow.flush_trace_async_logging()\n"
        "print('TRACE=' + mlflow.get_last_active_trace_id())\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_TOKEN": alice, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    printed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    found = re.search(r"View run webui-printed-run at: (\S+)", printed.stdout)
    assert found, printed.stdout + printed.stderr
    link = found.group(1)
    assert "workspace=" not in link, link  # the client names no workspace: the service chooses it
    trace_id = re.search(r"TRACE=(\S+)", printed.stdout).group(1)
    return World(experiment_id, [r["run_id"] for r in runs], trace_id, link, link.rstrip("/").rsplit("/", 1)[-1])


@dataclass
class Visit:
    """What a browser saw on one page: failed answers of the service and every answer's body."""

    failed: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


class Walker:
    """One user's browser (Debian's chromium), signed in at the identity provider, recording every
    answer of the service."""

    def __init__(self, server: CompanyServer, username: str):
        self.server, self.username = server, username
        self.visit = Visit()
        self.calls: list[str] = []  # every call of the service's API since the last page was opened
        self._pending: list = []
        RESULTS.mkdir(parents=True, exist_ok=True)

    async def __aenter__(self) -> Walker:
        self._playwright = await playwright_api.async_playwright().start()
        self.browser = await self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.page = await (await self.browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
        self.page.on("response", lambda response: self._pending.append(self._answered(response, self.visit)))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.browser.close()
        await self._playwright.stop()

    async def _answered(self, response, visit: Visit) -> None:
        url = response.url
        if not url.startswith(self.server.uri) or "/static-files/" in url:
            return
        self.calls.append(url[len(self.server.uri) :])
        if response.status >= 400:
            visit.failed.append(f"{response.status} {response.request.method} {url[len(self.server.uri) :]}")
        if response.status < 300 or response.status >= 400:
            try:
                visit.bodies.append(await response.text())
            except Exception:  # a body the browser did not keep
                pass

    async def sign_in(self, url: str) -> None:
        """Open `url` without a session: the identity provider's sign-in page comes first."""
        await self.page.goto(url)
        await self.page.locator('input[name="username"]').fill(self.username)
        await self.page.locator('input[name="password"]').fill(IDP_PASSWORD)
        await self.page.locator('button[type="submit"]').click()
        await self.page.wait_for_url(re.compile("^" + re.escape(self.server.uri) + "/"), timeout=60_000)

    async def open(self, name: str, route: str, *expect: str) -> Visit:
        """Load the UI at `route` (a deep link, as a new page) and wait for each text of `expect`."""
        await self.page.goto("about:blank")
        self.visit, self.calls = Visit(), []
        await self.page.goto(route if route.startswith("http") else f"{self.server.uri}/{route}")
        for text in expect:
            await self.page.get_by_text(text, exact=False).first.wait_for(timeout=60_000)
        await self.page.wait_for_timeout(1500)  # late calls of the page (background queries) are recorded too
        await self.page.screenshot(path=str(RESULTS / f"{self.username}-{name}.png"), full_page=True)
        await asyncio.gather(*self._pending)
        self._pending.clear()
        return self.visit


def pages_of_the_experiment(world: World) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, route, texts it must show) of every page of alice's experiment a team member uses."""
    e, (run, other) = world.experiment_id, world.runs
    compare = f"#/compare-runs?runs={json.dumps([run, other])}&experiments={json.dumps([e])}"
    return [
        ("experiments", "#/experiments", (EXPERIMENT,)),
        ("experiment", f"#/experiments/{e}", (EXPERIMENT, "Overview")),  # its default page (GenAI overview)
        ("runs-table", f"#/experiments/{e}/runs", ("webui-run-0", "webui-run-1")),
        ("charts", f"#/experiments/{e}/runs?compareRunsMode=CHART", ("accuracy",)),
        ("run-overview", f"#/experiments/{e}/runs/{run}", ("webui-run-0", "learning_rate", EXPERIMENT)),
        ("run-metrics", f"#/experiments/{e}/runs/{run}/model-metrics", ("accuracy",)),
        ("run-artifacts", f"#/experiments/{e}/runs/{run}/artifacts/plot.png", ("plot.png",)),
        ("compare", compare, ("webui-run-0", "webui-run-1", "learning_rate")),
        ("models", "#/models", (MODEL,)),
        ("model-version", f"#/models/{MODEL}/versions/1", ("Version 1", "Inputs (1)")),
        ("traces", f"#/experiments/{e}/traces", ("webui-question",)),
        ("account", "#/account", ("Logged in as",)),
    ]


async def assert_image_preview(walker: Walker) -> None:
    """The artifact page shows the PNG itself (a decoded image, not an empty frame)."""
    image = walker.page.locator("img[src^='blob:'], img[src*='get-artifact']").first
    await image.wait_for(timeout=30_000)
    assert await image.evaluate("(img) => img.complete && img.naturalWidth") == 96


@pytest.mark.timeout(600)
@pytest.mark.parametrize("username", ["alice", "bob"])
async def test_team_members_use_every_page(ui_service, world, username):
    """The experiment's manager (alice) and a member of her group (bob, an editor)."""
    async with Walker(ui_service, username) as walker:
        # The run link MLflow's client printed, before signing in: the sign-in comes back to it.
        await walker.sign_in(world.printed_link)
        await walker.page.get_by_text("webui-printed-run").first.wait_for(timeout=60_000)
        assert f"/runs/{world.printed_run}" in walker.page.url and "workspace=acme" in walker.page.url
        failures = {}
        for name, route, expect in pages_of_the_experiment(world):
            visit = await walker.open(name, route, *expect)
            if name == "run-artifacts":
                await assert_image_preview(walker)
            failures[name] = visit.failed
        # The account page lists what the user holds, from the service's grants.
        await walker.page.get_by_role("tab", name="Permissions").click()
        await walker.page.get_by_text({"alice": "MANAGE", "bob": "EDIT"}[username]).first.wait_for(timeout=30_000)
        await walker.page.screenshot(path=str(RESULTS / f"{username}-account-permissions.png"))
        # And the printed link again, now with a session.
        failures["printed-link"] = (await walker.open("printed-link", world.printed_link, "webui-printed-run")).failed
        assert "workspace=acme" in walker.page.url
        assert not any(failures.values()), failures


@pytest.mark.timeout(600)
async def test_a_reader_of_a_shared_model_sees_the_model_and_its_run(ui_service, world):
    """carol (group nlp reads the model, no role on the experiment): the model, its version and the
    run that produced it render; the experiment's name appears nowhere."""
    e, run = world.experiment_id, world.runs[0]
    async with Walker(ui_service, "carol") as walker:
        await walker.sign_in(f"{ui_service.uri}/#/models")
        failures = {}
        for name, route, expect in [
            ("models", "#/models", (MODEL,)),
            ("model", f"#/models/{MODEL}", (MODEL, "Version 1")),
            ("model-version", f"#/models/{MODEL}/versions/1", ("Version 1", "Inputs (1)", "webui-run-0")),
            ("run-overview", f"#/experiments/{e}/runs/{run}", ("webui-run-0", "learning_rate", MODEL)),
            ("run-metrics", f"#/experiments/{e}/runs/{run}/model-metrics", ("accuracy",)),
            ("run-artifacts", f"#/experiments/{e}/runs/{run}/artifacts/plot.png", ("plot.png",)),
        ]:
            visit = await walker.open(name, route, *expect)
            if name == "run-artifacts":
                await assert_image_preview(walker)
            failures[name] = visit.failed
            assert EXPERIMENT not in await walker.page.content() and not any(EXPERIMENT in body for body in visit.bodies), name
        assert not any(failures.values()), failures
        # Her experiments list does not have alice's experiment.
        await walker.open("experiments", "#/experiments", "Experiments")
        assert EXPERIMENT not in await walker.page.content()


@pytest.mark.timeout(600)
async def test_another_organisation_sees_none_of_it(ui_service, world):
    """dave (globex) opens every link alice's team uses: no page and no answer shows a name of
    acme's (not even the organisation's), and whatever is refused is refused as not found."""
    secrets = (EXPERIMENT, "webui-run", MODEL, "webui-printed-run", "acme")
    async with Walker(ui_service, "dave") as walker:
        await walker.sign_in(world.printed_link)
        seen = {}
        for name, route, _ in pages_of_the_experiment(world) + [("printed-link", world.printed_link, ())]:
            visit = await walker.open(name, route)
            content = await walker.page.content()
            # (a name in the link itself, typed by dave, is his own: the page may repeat it)
            leaked = [s for s in secrets if s not in route and (s in content or any(s in body for body in visit.bodies))]
            assert not leaked, f"{name}: {leaked}"
            seen[name] = visit.failed
        refused = [f for failed in seen.values() for f in failed]
        assert refused and all(f.startswith("404 ") for f in refused), seen
        assert "workspace=globex" in walker.page.url


@pytest.mark.timeout(600)
async def test_an_organisation_admin_reaches_the_ai_gateway(ui_service, world):
    """frank (acme-admins): the AI gateway's pages work for him, as docs/service.md says."""
    async with Walker(ui_service, "frank") as walker:
        await walker.sign_in(f"{ui_service.uri}/#/gateway")
        visit = await walker.open("gateway", "#/gateway", "AI Gateway")
        assert not visit.failed, visit.failed
        assert any("gateway/endpoints/list" in call for call in walker.calls), walker.calls


def test_background_calls_of_the_ui(ui_service, world, idp):
    """What the UI asks for on every page, as a bearer client would see it."""
    server = ui_service
    alice, bob, frank = (user_token(idp, u) for u in ("alice", "bob", "frank"))
    me = ok(server.call("GET", "ajax-api/2.0/mlflow/users/current", alice))
    assert me["user"]["username"] == "alice" and me["user"]["is_admin"] is False and me["is_basic_auth"] is False
    assert isinstance(me["user"]["id"], int)
    assert ok(server.call("GET", "api/2.0/mlflow/users/current", frank))["user"]["username"] == "frank"
    # The account page: the caller's own grants, by where they come from; nobody else's.
    roles = ok(server.call("GET", "ajax-api/3.0/mlflow/users/roles/list", bob, params={"username": "bob"}))["roles"]
    assert [r["name"] for r in roles] == [
        f"__user_{ok(server.call('GET', 'ajax-api/2.0/mlflow/users/current', bob))['user']['id']}__",
        "group:vision",
        "organisation:acme",
    ]
    assert {(p["resource_type"], p["resource_pattern"], p["permission"]) for p in roles[1]["permissions"]} == {
        ("experiment", world.experiment_id, "EDIT"),
        ("registered_model", MODEL, "READ"),
    }
    assert server.call("GET", "ajax-api/3.0/mlflow/users/roles/list", bob, params={"username": "alice"}).status_code == 403
    mine = ok(server.call("GET", "ajax-api/3.0/mlflow/users/current/permissions", alice))
    assert {"experiment", "registered_model"} <= {p["resource_type"] for p in mine["permissions"]}
    assert all(p["permission"] == "MANAGE" for p in mine["permissions"] if p["role_name"].startswith("__user_"))
    # The Assistant is off, cleanly; telemetry is off and answered here.
    assert ok(server.call("GET", "ajax-api/3.0/mlflow/assistant/config", alice))["providers"] == {}
    assert ok(server.call("GET", "ajax-api/3.0/mlflow/assistant/providers", alice))["providers"] == []
    assert server.call("POST", "ajax-api/3.0/mlflow/assistant/message", alice, json={"message": "hi"}).status_code == 403
    assert ok(server.call("GET", "ajax-api/3.0/mlflow/ui-telemetry", alice))["disable_ui_telemetry"] is True
    assert ok(server.call("POST", "ajax-api/3.0/mlflow/ui-telemetry", alice, json={"records": [{"event_name": "x"}]})) == {
        "status": "disabled"
    }
    # The AI gateway: organisation admins; a member's runs page lists no endpoints.
    endpoints = {"gateway_path": "api/2.0/endpoints/"}
    assert ok(server.call("GET", "ajax-api/2.0/mlflow/gateway-proxy", alice, params=endpoints)) == {"endpoints": []}
    assert server.call("GET", "ajax-api/2.0/mlflow/gateway-proxy", frank, params=endpoints).status_code == 200
    invoke = {"gateway_path": "gateway/chat/invocations", "json_data": {}}
    assert server.call("POST", "ajax-api/2.0/mlflow/gateway-proxy", alice, json=invoke).status_code == 403
    assert server.call("GET", "ajax-api/3.0/mlflow/gateway/secrets/config", alice).status_code == 403
    assert server.call("GET", "ajax-api/3.0/mlflow/gateway/secrets/config", frank).status_code == 200
    # Not the UI's, still refused; the UI's page is answered only with a session or a token.
    assert server.call("GET", "ajax-api/2.0/mlflow/webhooks", alice).status_code == 403
    page = server.call("GET", "", alice)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store" and '("acme",' in page.text
    assert '("globex",' in server.call("GET", "", user_token(idp, "dave")).text
