"""A kernel started through Jupyter's REST API logs to the embedded service with no set-up."""

from __future__ import annotations

import json

import nbformat

from conftest import KernelSession, mlflow_api, wait_for_state


async def start_notebook_session(jp_fetch, jp_root_dir, path: str) -> str:
    (jp_root_dir / path).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(), jp_root_dir / path)
    response = await jp_fetch(
        "api",
        "sessions",
        method="POST",
        body=json.dumps({"path": path, "name": path.rsplit("/", 1)[-1], "type": "notebook", "kernel": {"name": "python3"}}),
    )
    return json.loads(response.body)["kernel"]["id"]


async def test_kernel_logs_a_metric_with_notebook_source_tags(jp_fetch, jp_ws_fetch, jp_root_dir, infinstor):
    await wait_for_state(jp_fetch, "running")
    kernel_id = await start_notebook_session(jp_fetch, jp_root_dir, "projects/churn/train.ipynb")
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    kernel = KernelSession(ws)
    try:
        result = await kernel.execute(
            "import mlflow, os\n"
            "mlflow.log_metric('loss', 0.1)\n"
            "run = mlflow.active_run()\n"
            "print('RUN', run.info.run_id)\n"
            "print('ENV', sorted(k for k in os.environ if 'SECRET' in k.upper() or 'TOKEN' in k.upper()))\n"
            "print('VALUES', [v for v in os.environ.values() if len(v) > 30 and '/' not in v])\n"
        )
    finally:
        ws.close()
    assert result["error"] is None, result["error"]
    lines = dict(line.split(" ", 1) for line in result["stdout"].strip().splitlines())
    run_id = lines["RUN"].strip()

    tracking = infinstor.tracking
    code, body = await mlflow_api(tracking.uri, f"runs/get?run_id={run_id}", headers=tracking.auth_headers())
    assert code == 200, body
    run = body["run"]
    assert [m["key"] for m in run["data"]["metrics"]] == ["loss"]
    assert run["data"]["metrics"][0]["value"] == 0.1
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.source.name"] == "projects/churn/train.ipynb"
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.user"] == infinstor.local_username()
    assert tags["infinstor.notebook.path"] == str((jp_root_dir / "projects/churn/train.ipynb").resolve())

    # The kernel was given the path of its credentials, never the credentials themselves.
    secret = tracking.secret_path.read_text().strip()
    assert secret not in result["stdout"]
    assert lines["ENV"].strip() == "['INFINSTOR_SECRET_FILE']"


async def test_a_kernel_without_the_secret_is_refused(jp_fetch, jp_ws_fetch, jp_root_dir, infinstor):
    """The guard is real: the same kernel, with the credential path removed, gets 401."""
    await wait_for_state(jp_fetch, "running")
    kernel_id = await start_notebook_session(jp_fetch, jp_root_dir, "other.ipynb")
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        result = await KernelSession(ws).execute(
            "import os, mlflow\n"
            "os.environ.pop('INFINSTOR_SECRET_FILE')\n"
            "os.environ['MLFLOW_HTTP_REQUEST_MAX_RETRIES'] = '0'\n"
            "try:\n"
            "    mlflow.search_experiments()\n"
            "except Exception as exc:\n"
            "    print('REFUSED', type(exc).__name__, '401' in str(exc) or 'UNAUTHENTICATED' in str(exc))\n"
        )
    finally:
        ws.close()
    assert "REFUSED" in result["stdout"] and result["stdout"].strip().endswith("True"), result


async def test_a_finished_run_prints_no_link_to_the_embedded_service(jp_fetch, jp_ws_fetch, jp_root_dir, infinstor):
    """MLflow prints "View run … at: <tracking URI>" when a run ends; the embedded service's
    loopback URI only answers the lab and its kernels, so in a notebook that link is dead."""
    await wait_for_state(jp_fetch, "running")
    kernel_id = await start_notebook_session(jp_fetch, jp_root_dir, "links.ipynb")
    ws = await jp_ws_fetch("api", "kernels", kernel_id, "channels")
    try:
        result = await KernelSession(ws).execute(
            "import mlflow\n"
            "with mlflow.start_run(run_name='linkless'):\n"
            "    mlflow.log_metric('x', 1.0)\n"
            "print('DONE')\n"
        )
    finally:
        ws.close()
    assert result["error"] is None, result["error"]
    assert "DONE" in result["stdout"]
    assert "View run" not in result["stdout"], result["stdout"]
    assert infinstor.tracking.uri not in result["stdout"], result["stdout"]
