"""The sidebar's live checks, against a real MLflow server through the lab's proxy.

The sidebar keeps its lists live with cheap "what changed since" searches (labextension/src/
mlflow/models.ts): it asks only these while their answer stays the same, and the full list when
it changes. Writes made where the lab cannot see them (a kernel or a job writing straight to the
tracking service, the CLI, a colleague) must change the answer, and nothing else may (or the
lists would reload on every check). This walks each kind of write, made straight to the embedded
tracking service as a kernel does, and asks the same searches the sidebar sends, through the
lab's MLflow proxy as the browser does.
"""

from __future__ import annotations

import asyncio
import json
import time

import requests

from conftest import mlflow_api, wait_for_state

NOTEBOOK = "work/train.ipynb"


class Lab:
    """The sidebar's checks (same requests as models.ts), through the lab's proxy."""

    def __init__(self, jp_fetch):
        self.jp_fetch = jp_fetch

    async def _call(self, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        response = await self.jp_fetch(
            "infinstor",
            "api",
            "mlflow",
            path,
            method="POST" if body is not None else "GET",
            body=json.dumps(body) if body is not None else None,
            params=query or {},
            headers={"Content-Type": "application/json"},
        )
        return json.loads(response.body or b"{}")

    async def experiments(self) -> list:
        """The experiment changed last, deleted ones included."""
        body = await self._call(
            "api/2.0/mlflow/experiments/search",
            {"max_results": 1, "order_by": ["last_update_time DESC"], "view_type": "ALL"},
        )
        return [
            [e["experiment_id"], e["name"], int(e.get("last_update_time", 0)), e.get("lifecycle_stage", "")]
            for e in body.get("experiments", [])
        ]

    async def runs(self, experiment_ids: list[str], size: int = 2, filter: str = "") -> list:
        """The newest runs (as many as cover the running ones, and one more)."""
        body = await self._call(
            "api/2.0/mlflow/runs/search",
            {
                "experiment_ids": experiment_ids,
                "order_by": ["attributes.start_time DESC", "attributes.run_id ASC"],
                "max_results": size,
                "run_view_type": "ACTIVE_ONLY",
                **({"filter": filter} if filter else {}),
            },
        )
        return [signature(r) for r in body.get("runs", [])]

    async def models(self) -> list:
        """The registered model changed last."""
        body = await self._call(
            "api/2.0/mlflow/registered-models/search",
            query={"max_results": 1, "order_by": "last_updated_timestamp DESC"},
        )
        return [[m["name"], int(m.get("last_updated_timestamp", 0))] for m in body.get("registered_models", [])]

    async def model(self, name: str) -> list:
        """One registered model: its aliases, tags, description and latest versions."""
        m = (await self._call("api/2.0/mlflow/registered-models/get", query={"name": name}))["registered_model"]
        return [
            int(m.get("last_updated_timestamp", 0)),
            m.get("description", ""),
            sorted(f"{a['alias']}={a['version']}" for a in m.get("aliases", [])),
            sorted(f"{t['key']}={t['value']}" for t in m.get("tags", [])),
            [f"{v['version']}:{v.get('status', '')}:{v.get('last_updated_timestamp', 0)}" for v in m.get("latest_versions", [])],
        ]


def signature(run: dict) -> str:
    """What changes when a run does (models.ts's runSignature)."""
    info, data = run["info"], run.get("data", {})
    metrics = ",".join(f"{m['key']}={m['value']}@{m.get('step', 0)}" for m in data.get("metrics", []))
    return "|".join(
        str(x)
        for x in (
            info["run_id"],
            info["status"],
            info.get("end_time", ""),
            info.get("run_name", ""),
            metrics,
            len(data.get("tags", [])),
            len(data.get("params", [])),
        )
    )


class Kernel:
    """Writes straight to the embedded tracking service, with a kernel's credentials."""

    def __init__(self, tracking):
        self.uri, self.headers = tracking.uri, tracking.auth_headers()

    async def __call__(self, path: str, body: dict | None = None, method: str | None = None) -> dict:
        if method == "DELETE":  # with a JSON body, as MLflow's own client sends it
            response = await asyncio.to_thread(
                requests.delete, f"{self.uri}/api/2.0/mlflow/{path}", json=body, headers=self.headers, timeout=30
            )
            code, answer = response.status_code, response.json()
        else:
            code, answer = await mlflow_api(self.uri, path, headers=self.headers, body=body, method=method)
        assert code == 200, (path, code, answer)
        return answer or {}


async def tick() -> None:
    """Let the clock move on (MLflow's times are in milliseconds)."""
    await asyncio.sleep(0.01)


async def changes(check, write) -> tuple:
    """The check's answer before and after `write`; the same answer asked twice must not differ."""
    before = await check()
    assert await check() == before, "a check must answer the same while nothing changes"
    await write()
    return before, await check()


async def test_every_write_outside_the_lab_changes_the_check_that_covers_it(jp_fetch, infinstor):
    await wait_for_state(jp_fetch, "running")
    lab, kernel = Lab(jp_fetch), Kernel(infinstor.tracking)

    # -- experiments: created, renamed, deleted, restored ----------------------------------------
    made = {}

    async def create():
        await tick()
        made["id"] = (await kernel("experiments/create", {"name": "live-exp"}))["experiment_id"]

    before, after = await changes(lab.experiments, create)
    assert after != before and after[0][:2] == [made["id"], "live-exp"]
    exp = made["id"]
    for path, body in [
        ("experiments/update", {"experiment_id": exp, "new_name": "live-exp-renamed"}),
        ("experiments/delete", {"experiment_id": exp}),
        ("experiments/restore", {"experiment_id": exp}),
    ]:

        async def write(path=path, body=body):
            await tick()
            await kernel(path, body)

        before, after = await changes(lab.experiments, write)
        assert after != before, path

    # -- runs: a new run, a running run's metric, its end -------------------------------------------
    async def runs():
        return await lab.runs([exp])

    run = {}

    async def start():
        await tick()
        info = (
            await kernel(
                "runs/create",
                {"experiment_id": exp, "start_time": int(time.time() * 1000), "tags": [{"key": "mlflow.source.name", "value": NOTEBOOK}]},
            )
        )["run"]["info"]
        run.update(id=info["run_id"], artifacts=info["artifact_uri"])

    before, after = await changes(runs, start)
    assert after != before and after[0].startswith(run["id"] + "|RUNNING")
    for path, body in [
        ("runs/log-metric", {"run_id": run["id"], "key": "loss", "value": 0.5, "timestamp": 1, "step": 1}),
        ("runs/log-metric", {"run_id": run["id"], "key": "loss", "value": 0.25, "timestamp": 2, "step": 2}),
        ("runs/update", {"run_id": run["id"], "status": "FINISHED", "end_time": int(time.time() * 1000)}),
        ("runs/set-tag", {"run_id": run["id"], "key": "mlflow.runName", "value": "renamed-run"}),
    ]:

        async def write(path=path, body=body):
            await kernel(path, body)

        before, after = await changes(runs, write)
        assert after != before, (path, body)

    # -- this notebook: a run it logs to an experiment created meanwhile ----------------------------
    # The experiments check tells of the new experiment; the notebook's runs there then show.
    other = {}

    async def new_experiment_and_run():
        await tick()
        other["id"] = (await kernel("experiments/create", {"name": "live-exp-2"}))["experiment_id"]
        await kernel(
            "runs/create",
            {
                "experiment_id": other["id"],
                "start_time": int(time.time() * 1000),
                "tags": [{"key": "mlflow.source.name", "value": NOTEBOOK}],
            },
        )

    before, after = await changes(lab.experiments, new_experiment_and_run)
    assert after[0][0] == other["id"]
    notebook_filter = f"tags.`mlflow.source.name` = '{NOTEBOOK}'"
    assert len(await lab.runs([exp, other["id"]], size=10, filter=notebook_filter)) == 2

    # -- registered models: a new model, a new version; an alias set, moved; a tag -------------------
    async def register():
        await tick()
        await kernel("registered-models/create", {"name": "live-model"})

    before, after = await changes(lab.models, register)
    assert after[0][0] == "live-model"

    async def version():
        await tick()
        await kernel("model-versions/create", {"name": "live-model", "source": f"{run['artifacts']}/model", "run_id": run["id"]})

    before, after = await changes(lab.models, version)
    assert after != before
    await version()

    async def model():
        return await lab.model("live-model")

    for path, body, method in [
        ("registered-models/alias", {"name": "live-model", "alias": "champion", "version": "1"}, "POST"),
        ("registered-models/alias", {"name": "live-model", "alias": "champion", "version": "2"}, "POST"),
        ("registered-models/set-tag", {"name": "live-model", "key": "team", "value": "ml"}, "POST"),
        ("registered-models/update", {"name": "live-model", "description": "now with a description"}, "PATCH"),
        ("registered-models/alias", {"name": "live-model", "alias": "champion"}, "DELETE"),
    ]:

        async def write(path=path, body=body, method=method):
            await tick()
            await kernel(path, body, method)

        before, after = await changes(model, write)
        assert after != before, (path, body)
