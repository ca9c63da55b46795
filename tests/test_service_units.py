"""The company service's parts on their own: policy validation, configuration, our schema
migrations and store (on a real SQLite file), and paging over filtered search results."""

from __future__ import annotations

import json
import os
import subprocess
import time

import jwt
import pytest
import sqlalchemy as sa
import yaml

import legacy_service_schema
from infinstor_jupyterlab.tracking_service.changes import ChangeWatcher
from infinstor_jupyterlab.tracking_service.company.searches import filtered_page
from infinstor_jupyterlab.tracking_service.config import ConfigError, load_config
from infinstor_jupyterlab.tracking_service.db import (
    SCHEMA_VERSION,
    current_version,
    make_engine,
    migrate,
    revision_of,
    version_table,
)
from infinstor_jupyterlab.tracking_service.oidc_auth import ClaimNames, InvalidToken
from infinstor_jupyterlab.tracking_service.otlp import InvalidExport, trace_ids_in_export
from infinstor_jupyterlab.tracking_service.policy import (
    ADMIN_ONLY,
    KINDS,
    OTLP_TRACES_PATH,
    REFUSED,
    PolicyError,
    load_policy,
    match_route,
    mlflow_operations,
)
from infinstor_jupyterlab.tracking_service.service_store import ServiceStore
from infinstor_jupyterlab.tracking_service.signin_audit import FailedSignIn, FailedSignIns, describe
from servers import mlflow_server_command


def write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


# -- policy -------------------------------------------------------------------------------------------
def test_shipped_policy_covers_operations_mlflow_has():
    policy = load_policy()
    assert set(policy.roles) == set(KINDS) <= mlflow_operations()
    assert policy.role_for("GetRun") == "reader"
    assert policy.role_for("SetModelVersionTag") == "editor"
    assert policy.role_for("DeleteRegisteredModel") == "manager"
    assert policy.role_for("CreateExperiment") == "member"
    # MLflow 3 tracing and GenAI evaluation follow the experiment's roles.
    assert policy.role_for("StartTraceV3") == "editor" and policy.role_for("LogSpans") == "editor"
    assert policy.role_for("GetTrace") == "reader" and policy.role_for("GetAssessmentRequest") == "reader"
    assert policy.role_for("DeleteTraces") == "manager" and policy.role_for("DeleteDataset") == "manager"
    assert policy.role_for("SearchTracesV3") == "member"  # filtered to the caller's experiments
    # Organisation infrastructure is listed for admins; the rest of MLflow is refused outright.
    assert {policy.role_for(op) for op in ADMIN_ONLY} == {"admin"} and "ListGatewayEndpoints" in ADMIN_ONLY
    assert set(KINDS) | set(REFUSED) == mlflow_operations() and not set(KINDS) & set(REFUSED)
    assert policy.role_for("CreateWorkspace") == "admin" and "CreateWorkspace" not in policy.roles


def test_every_operation_has_a_kind_from_the_table_of_kinds(monkeypatch):
    """Kinds are a typed table (resolver and scope), checked when the policy loads: an operation of a
    kind nobody wrote a resolver for stops the service at start-up with a message naming both."""
    from infinstor_jupyterlab.tracking_service import policy as policy_module
    from infinstor_jupyterlab.tracking_service.company.kinds import KIND_TABLE, Scope

    policy = load_policy()
    assert set(policy.kinds) == set(KINDS) and all(policy.kinds[op] is KIND_TABLE[KINDS[op]] for op in KINDS)
    assert policy.kinds["GetRun"].scope is Scope.RESOURCE and policy.kinds["SearchExperiments"].scope is Scope.COLLECTION
    assert {policy.kinds[op].scope for op in ADMIN_ONLY} == {Scope.ORG_ADMIN}
    assert all(callable(kind.resolve) for kind in KIND_TABLE.values())
    monkeypatch.setitem(policy_module.KINDS, "GetRun", "runn")
    with pytest.raises(PolicyError, match=r"GetRun is of the unknown kind 'runn'; the kinds are .*\brun\b"):
        load_policy()


def _imports(tree):
    """Import statements of a module, outside `if TYPE_CHECKING:` blocks."""
    import ast

    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def test_no_import_cycles_between_modules():
    """The package's modules import each other without a cycle, imports inside functions included
    (those only hide one), imports for type checking alone excepted."""
    import ast
    from pathlib import Path

    import infinstor_jupyterlab

    root = Path(infinstor_jupyterlab.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        name = ".".join(("infinstor_jupyterlab", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in _imports(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            # (the package's __init__ holds only its version and Jupyter's entry hooks)
            found |= {t for t in targets if t in modules and t not in (name, "infinstor_jupyterlab")}
        graph[name] = found
    cycles = []

    def visit(node, stack, seen):
        for nxt in graph[node]:
            if nxt in stack:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, stack + [nxt], seen)

    for start in graph:
        visit(start, [start], {start})
    assert not cycles, cycles[:3]


def test_override_one_operation(tmp_path):
    policy = load_policy(write(tmp_path, "p.yaml", {"operations": {"SetModelVersionTag": "reader", "GetRun": "editor"}}))
    assert policy.role_for("SetModelVersionTag") == "reader"
    assert policy.role_for("GetRun") == "editor"
    assert policy.role_for("SetTag") == "editor"  # the rest stays as shipped


@pytest.mark.parametrize(
    "data, message",
    [
        ({"operations": {"SetModelVersionTags": "reader"}}, "unknown operation 'SetModelVersionTags'"),
        ({"operations": {"CreateWorkspace": "admin"}}, "refused by this service to everyone"),
        ({"roles": {"admin": ["SearchUnifiedTraces"]}}, "refused by this service to everyone"),
        ({"operations": {"ListGatewayEndpoints": "reader"}}, "for organisation admins only"),
        ({"operations": {"CreateReviewQueue": "member"}}, "for organisation admins only"),
        ({"operations": {"StartTraceV3": "member"}}, "about one resource"),
        ({"operations": {"SearchTracesV3": "reader"}}, "must be 'member' or 'admin'"),
        ({"operations": {"GetRun": "owner"}}, "unknown role 'owner'"),
        ({"operations": {"GetRun": "member"}}, "about one resource"),
        ({"operations": {"SearchRuns": "reader"}}, "must be 'member' or 'admin'"),
        ({"roles": {"reader": ["GetRun"], "editor": ["GetRun"]}}, "listed under both"),
        ({"roles": {"reader": "GetRun"}}, "must be a list"),
        ({"rules": {}}, "unknown key"),
        ("roles: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_policies_are_errors(tmp_path, data, message):
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_policy(write(tmp_path, "p.yaml", data))


def test_missing_policy_file_is_an_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_routes_come_from_mlflow():
    assert match_route("POST", "/api/2.0/mlflow/runs/log-batch") == ("LogBatch", {})
    assert match_route("POST", "/ajax-api/2.0/mlflow/runs/search") == ("SearchRuns", {})
    assert match_route("DELETE", "/api/2.0/mlflow/logged-models/m-1/tags/k") == (
        "DeleteLoggedModelTag",
        {"model_id": "m-1", "tag_key": "k"},
    )
    assert match_route("GET", "/api/2.0/mlflow-artifacts/artifacts/workspaces/acme/1/r/artifacts/a.txt") == (
        "DownloadArtifact",
        {"artifact_path": "workspaces/acme/1/r/artifacts/a.txt"},
    )
    assert match_route("GET", "/api/2.0/mlflow-artifacts/artifacts")[0] == "ListProxiedArtifacts"
    assert match_route("GET", "/static-files/index.html") is None
    assert match_route("GET", "/api/2.0/mlflow/no-such-thing") is None
    # A fixed path segment wins over another route's variable one, as in MLflow's Flask app.
    assert match_route("GET", "/api/3.0/mlflow/traces/get") == ("GetTrace", {})
    assert match_route("GET", "/api/3.0/mlflow/traces/batchGet") == ("BatchGetTraces", {})
    assert match_route("GET", "/api/3.0/mlflow/traces/tr-1") == ("GetTraceInfoV3", {"trace_id": "tr-1"})
    assert match_route("GET", "/ajax-api/3.0/mlflow/datasets/search") == ("SearchEvaluationDatasets", {})
    assert match_route("GET", "/api/3.0/mlflow/datasets/d-1") == ("GetDataset", {"dataset_id": "d-1"})
    # MLflow's client exports spans over OTLP, outside the REST API's paths.
    from mlflow.tracing.utils import otlp

    assert OTLP_TRACES_PATH == otlp.OTLP_TRACES_PATH
    assert match_route("POST", "/v1/traces") == ("LogSpans", {})


def _otlp_request(*trace_hexes: str):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for index, trace_hex in enumerate(trace_hexes):
        span = spans.add(trace_id=bytes.fromhex(trace_hex), span_id=(index + 1).to_bytes(8, "big"), name="s")
        span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    return request


def test_otlp_exports_name_the_traces_they_write():
    import gzip
    import json

    from google.protobuf.json_format import MessageToDict

    a, b = "0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736"
    body = _otlp_request(a, b, a).SerializeToString()
    assert trace_ids_in_export(body, "application/x-protobuf", None) == [f"tr-{a}", f"tr-{b}"]
    assert trace_ids_in_export(gzip.compress(body), "application/x-protobuf", "gzip") == [f"tr-{a}", f"tr-{b}"]
    as_json = MessageToDict(_otlp_request(b))  # OTLP/JSON writes ids in hex, not protobuf's base64
    for span in as_json["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        span["traceId"], span["spanId"] = b, "0000000000000001"
    assert trace_ids_in_export(json.dumps(as_json).encode(), "application/json; charset=utf-8", None) == [f"tr-{b}"]
    for bad, content_type, encoding in (
        (b"\xff\x00junk", "application/x-protobuf", None),
        (b"{", "application/json", None),
        (body, "application/x-protobuf", "gzip"),
        (body, "text/plain", None),
    ):
        with pytest.raises(InvalidExport):
            trace_ids_in_export(bad, content_type, encoding)


@pytest.mark.slow  # starts `mlflow server`
def test_server_refuses_to_start_with_an_invalid_policy(tmp_path):
    config = write(
        tmp_path,
        "service.yaml",
        {
            "oidc": {"issuer": "http://127.0.0.1:9", "audience": "x"},
            "policy_file": write(tmp_path, "policy.yaml", {"operations": {"SetModelVersionTagz": "reader"}}),
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "INFINSTOR_", "_MLFLOW"))}
    env.update(
        INFINSTOR_SERVICE_MODE="company",
        INFINSTOR_SERVICE_CONFIG=config,
        MLFLOW_ENABLE_WORKSPACES="true",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    result = subprocess.run(
        mlflow_server_command(0, f"sqlite:///{tmp_path / 'm.db'}"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The server stops at start-up (MLflow's CLI itself may still exit 0 once its server is gone).
    assert "unknown operation 'SetModelVersionTagz'" in result.stdout + result.stderr


# -- configuration ------------------------------------------------------------------------------------
def test_config_file_and_environment(tmp_path):
    path = write(
        tmp_path,
        "c.yaml",
        {
            "oidc": {"issuer": "https://idp.example", "audience": "mlflow", "claims": {"org": "tid", "groups": "roles"}},
            "org_admin_groups": ["admins"],
            "defaults": {"experiment": "private", "registered_models_org_readable": True},
        },
    )
    config = load_config(path, {"INFINSTOR_OIDC_AUDIENCE": "from-env", "INFINSTOR_JOB_TOKEN_SECRET": "s" * 40})
    assert config.issuer == "https://idp.example" and config.audience == "from-env"
    assert config.claims.org == "tid" and config.claims.groups == "roles" and config.claims.username == "preferred_username"
    assert config.experiment_default == "private" and config.models_org_readable is True
    assert config.org_admin_groups == ("admins",) and config.job_token_secret == "s" * 40
    assert "s" * 40 not in repr(config)
    browser_file = write(
        tmp_path, "b.yaml", {"oidc": {"issuer": "https://idp.example", "audience": "mlflow"}, "browser": {"client_id": "mlflow-ui"}}
    )
    with_browser = load_config(
        None, {"INFINSTOR_SERVICE_CONFIG": browser_file, "INFINSTOR_SESSION_SECRET": "b" * 40, "INFINSTOR_BROWSER_CLIENT_SECRET": "c" * 20}
    )
    assert with_browser.browser.client_id == "mlflow-ui" and with_browser.browser.redirect_path == "/infinstor/api/auth/callback"
    assert "b" * 40 not in repr(with_browser) and "c" * 20 not in repr(with_browser)


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "needs oidc.issuer"),
        ({"oidc": {"issuer": "i", "audience": "a", "claim": {}}}, "unknown setting"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "defaults": {"experiment": "public"}}, "defaults.experiment"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "defaults": {"experiment_group_role": "owner"}}, "experiment_group_role"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "job_tokens": {"secret": "short"}}, "at least 32"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "tokens": {"default_days": 400}}, "default_days <= max_days"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "browser": {"client_id": "ui"}}, "session_secret"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "browser": {"scopes": "openid"}}, "needs browser.client_id"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "grant_cache_seconds": 7200}, "grant_cache_seconds"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "change_poll_seconds": 0}, "change_poll_seconds"),
        ({"oidc": {"issuer": "i", "audience": "a"}, "change_poll_seconds": "soon"}, "must be numbers"),
    ],
)
def test_config_errors(tmp_path, data, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, "c.yaml", data), {})


# -- schema and store ---------------------------------------------------------------------------------
def test_migrations_are_versioned_and_idempotent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert migrate(engine) == SCHEMA_VERSION
    assert migrate(engine) == SCHEMA_VERSION
    with engine.connect() as c:
        assert current_version(c) == SCHEMA_VERSION
        assert c.execute(sa.select(sa.func.count()).select_from(version_table)).scalar() == 1
        assert {"infinstor_users", "infinstor_grants", "infinstor_api_tokens", "infinstor_audit"} <= set(sa.inspect(c).get_table_names())
    with engine.begin() as c:
        c.execute(version_table.update().values(version_num=revision_of(SCHEMA_VERSION + 1)))
    with pytest.raises(RuntimeError, match="newer than this release"):
        migrate(engine)


def test_store_roles_tokens_and_audit(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    store = ServiceStore(engine)
    store.grant("acme", "experiment", "1", "group", "vision", "editor", "alice")
    store.grant("acme", "experiment", "1", "user", "bob", "reader", "alice")
    store.grant("acme", "experiment", "2", "org", "acme", "reader", "alice")
    assert store.role_on("acme", "experiment", "1", "bob", ["vision"]) == "editor"  # the highest counts
    assert store.role_on("acme", "experiment", "1", "carol", ["nlp"]) is None
    assert store.role_on("globex", "experiment", "1", "bob", ["vision"]) is None  # grants are per organisation
    assert store.readable_ids("acme", "experiment", "carol", []) == {"2"}
    store.grant("acme", "experiment", "1", "group", "vision", "manager", "alice")  # a second grant replaces the first
    assert [g.role for g in store.list_grants("acme", "experiment", "1") if g.principal == "vision"] == ["manager"]
    with pytest.raises(ValueError):
        store.grant("acme", "experiment", "1", "team", "x", "reader", "alice")

    token, record = store.create_token("acme", "alice", "ci", 3600)
    assert store.check_token(token).username == "alice"
    assert store.check_token(token + "x") is None
    with engine.connect() as c:
        stored = c.execute(sa.text("SELECT secret_hash FROM infinstor_api_tokens")).scalar()
    assert token.split("_", 2)[2] not in stored  # the secret may itself hold "_"
    short, short_record = store.create_token("acme", "alice", "short", 0.5)
    time.sleep(0.6)
    assert store.check_token(short) is None  # expired
    assert store.revoke_token("acme", record.token_id, "bob") is False  # not bob's
    assert store.revoke_token("acme", record.token_id, "alice") is True
    assert store.check_token(token) is None

    store.record("acme", "alice", "CreateExperiment", 200, "experiment", "1", {"k": 1})
    store.record("globex", "dave", "CreateExperiment", 200, "experiment", "9")
    events = store.audit_log("acme")
    assert [(e["username"], e["action"], e["detail"]) for e in events] == [("alice", "CreateExperiment", {"k": 1})]


def test_every_change_of_a_grant_token_or_groups_raises_its_counter(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    # A database made by the first release (schema 1) gains the counters on upgrade.
    legacy_service_schema.make_database(engine, 1)
    migrate(engine)
    store = ServiceStore(engine)
    heard: list[str] = []  # what the store told its listeners (this process's caches)
    store.listeners.append(heard.append)
    seen = store.change_versions()
    assert seen == {"grants": 0, "tokens": 0}

    def raised(**expected):
        nonlocal seen
        now = store.change_versions()
        assert {k: now[k] - seen[k] for k in now} == {"grants": 0, "tokens": 0, **expected}
        assert sorted(heard) == sorted(kind for kind, n in expected.items() for _ in range(n))
        seen = now
        heard.clear()

    store.grant("acme", "experiment", "1", "user", "bob", "reader", "alice")
    raised(grants=1)
    store.grant("acme", "experiment", "1", "user", "bob", "editor", "alice")  # a changed role
    raised(grants=1)
    assert store.revoke("acme", "experiment", "1", "user", "carol") is False
    raised()  # nothing was revoked
    assert store.revoke("acme", "experiment", "1", "user", "bob") is True
    raised(grants=1)
    store.rename_resource("acme", "registered_model", "a", "b")
    raised(grants=1)
    store.forget_resource("acme", "experiment", "1")
    raised(grants=1)
    token, record = store.create_token("acme", "alice", "ci", 3600)
    raised()  # a new token cannot be in anyone's cache
    assert store.revoke_token("acme", record.token_id, "bob") is False
    raised()
    assert store.revoke_token("acme", record.token_id, "alice") is True
    raised(tokens=1)
    store.see_user("acme", "alice", "a@x", ["vision"], refresh_every=0)
    raised()  # a new user has no reused token
    store.see_user("acme", "alice", "a@x", ["vision"], refresh_every=0)
    raised()  # the same groups
    store.see_user("acme", "alice", "a@x", ["vision", "nlp"], refresh_every=0)
    raised(tokens=1)  # her API tokens act with her groups


def test_change_watcher_reads_at_most_once_per_poll_and_never_answers_stale():
    reads = []
    failing = [False]

    def read():
        if failing[0]:
            raise OSError("database away")
        reads.append(time.monotonic())
        return {"grants": len(reads)}

    watcher = ChangeWatcher(read, poll_seconds=0.5)
    assert watcher.version("grants") == 1
    assert [watcher.version("grants") for _ in range(50)] == [1] * 50 and len(reads) == 1  # no read per call
    time.sleep(0.55)
    assert watcher.version("grants") == 2  # the next call after the poll interval reads again
    assert watcher.version("tokens") is None  # a kind it never saw
    failing[0] = True
    time.sleep(0.55)
    assert watcher.version("grants") == 2  # a failed read: the last value, while it is recent
    time.sleep(0.55)
    assert watcher.version("grants") is None  # then nothing: callers ask the database
    failing[0] = False
    assert watcher.version("grants") == 3


# -- paging over a filtered stream ---------------------------------------------------------------------
class _Offsets:
    """A store-like search over a list: offset page tokens, like MLflow's SQL stores."""

    def __init__(self, items):
        self.items, self.calls = items, 0

    def __call__(self, max_results, token):
        from mlflow.store.entities.paged_list import PagedList
        from mlflow.utils.search_utils import SearchUtils

        self.calls += 1
        start = SearchUtils.parse_start_offset_from_page_token(token) if token else 0
        page = self.items[start : start + max_results]
        more = start + max_results < len(self.items)
        return PagedList(page, SearchUtils.create_page_token(start + max_results) if more else None)


@pytest.mark.parametrize("total, page_size", [(50, 4), (12, 3), (7, 10), (2500, 7)])
def test_filtered_pages_are_full_and_complete(total, page_size):
    items = list(range(total))
    fetch = _Offsets(items)
    keep = lambda i: i % 3 == 0  # noqa: E731
    pages, token = [], None
    while True:
        page, token = filtered_page(fetch, keep, page_size, token, batch=100)
        pages.append(page)
        if not token:
            break
    wanted = [i for i in items if keep(i)]
    assert [i for p in pages for i in p] == wanted
    assert all(len(p) == page_size for p in pages[:-1]) and 0 < len(pages[-1]) <= page_size


def test_filtered_page_with_nothing_readable():
    assert filtered_page(_Offsets(list(range(30))), lambda i: False, 5, None, batch=10) == ([], None)


# -- failed sign-ins ------------------------------------------------------------------------------------
def test_api_token_states_in_one_lookup(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    store = ServiceStore(engine)
    token, record = store.create_token("acme", "alice", "ci", 3600)
    assert store.inspect_token(token) == (record, "valid")
    assert store.inspect_token(token[:-1] + ("A" if token[-1] != "A" else "B"))[1] == "wrong_secret"
    assert store.inspect_token("inf_0123456789abcdef_nope") == (None, "unknown")
    assert store.inspect_token("inf_short_x") == (None, "malformed")
    store.revoke_token("acme", record.token_id, "alice")
    revoked, state = store.inspect_token(token)
    assert state == "revoked" and revoked.username == "alice" and store.check_token(token) is None
    short, _ = store.create_token("acme", "bob", "short", 0.2)
    time.sleep(0.3)
    assert store.inspect_token(short)[1] == "expired"


def test_failed_sign_ins_are_coalesced_per_window():
    now = [1000.0]
    rows = []
    audit = FailedSignIns(rows.append, window=60, max_rows=3, clock=lambda: now[0], wall=lambda: now[0])
    expired = FailedSignIn("expired", "10.0.0.1", "acme", "alice", True, subject="u-1")
    for _ in range(50):
        audit.failed(expired)
    assert len(rows) == 1  # the first at once, the repeats counted
    first = json.loads(rows[0]["detail"])
    assert (rows[0]["org"], rows[0]["username"], rows[0]["action"], rows[0]["status"]) == ("acme", "alice", "signin_failed", 401)
    assert first["count"] == 1 and first["reason"] == "expired" and first["source"] == "10.0.0.1" and first["verified"] is True
    audit.collect()
    assert len(rows) == 1  # the window is not over yet
    now[0] += 61
    audit.collect()
    repeats = json.loads(rows[1]["detail"])
    assert len(rows) == 2 and repeats["count"] == 49 and repeats["first_at"] <= repeats["last_at"]
    audit.failed(expired)  # a new window starts with a row of its own
    assert len(rows) == 3
    # A flood of distinct kinds: max_rows rows a window, the rest only counted, in one row.
    for index in range(100):
        audit.failed(FailedSignIn("bad_signature", f"10.1.0.{index}", "", "mallory", False))
    assert len(rows) == 5
    audit.collect(final=True)  # at shut-down every pending count is written
    overflow = [json.loads(r["detail"]) for r in rows[5:] if json.loads(r["detail"])["reason"] == "over_limit"]
    assert [o["count"] for o in overflow] == [98] and len(rows) == 6
    audit.collect(final=True)
    assert len(rows) == 6  # nothing left


def test_a_refused_credential_is_described_without_the_credential():
    claims = {"preferred_username": "alice", "sub": "u-1", "iss": "https://other.example", "org": "acme", "exp": 1}
    token = jwt.encode(claims, "a-secret-key-that-is-long-enough-for-hs256", algorithm="HS256")
    to_org = lambda claim: claim.lower()  # noqa: E731
    unverified = describe(token, InvalidToken("unknown key", "unknown_key"), "10.0.0.9", ClaimNames(), to_org)
    assert unverified == FailedSignIn(
        "unknown_key", "10.0.0.9", "", "alice", False, subject="u-1", issuer="https://other.example", claimed_org="acme"
    )  # a claim does not choose the organisation
    proven = InvalidToken("expired", "expired", {"username": "alice", "org": "ACME", "subject": "u-1", "verified": True})
    assert describe(token, proven, "10.0.0.9", ClaimNames(), to_org).org == "acme"
    api = InvalidToken("revoked", "revoked_api_token", {"token_id": "0123abcd", "username": "bob", "org": "acme", "verified": True})
    assert describe("inf_0123abcd89abcdef_secret", api, "", ClaimNames(), to_org).token_id == "0123abcd"
    garbage = describe("x" * 5000, InvalidToken("not a JWT", "malformed"), "", ClaimNames(), to_org)
    assert garbage == FailedSignIn("malformed", "", "", "", False)
    rows = []
    FailedSignIns(rows.append).failed(unverified)
    assert token not in json.dumps(rows) and token.split(".")[2] not in json.dumps(rows)
    long_name = describe(
        jwt.encode({"sub": "m" * 1000}, "k" * 32, algorithm="HS256"), InvalidToken("x", "bad_signature"), "", ClaimNames(), to_org
    )
    assert long_name.username == "m" * 128  # every value is cut short


def test_an_expired_token_proves_who_it_names_only_if_otherwise_genuine(monkeypatch):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from infinstor_jupyterlab.tracking_service.oidc_auth import TokenVerifier

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.PyJWK({**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key())), "kid": "k1", "alg": "RS256"})
    verifier = TokenVerifier("https://issuer.example", "urn:aud", jwks_uri="http://127.0.0.1:9/jwks", leeway=0)
    monkeypatch.setattr(verifier, "_signing_key", lambda kid: public)  # the provider's key, without a JWKS server

    def refused(**claims) -> InvalidToken:
        payload = {
            "iss": "https://issuer.example",
            "aud": "urn:aud",
            "exp": time.time() - 5,
            "sub": "u1",
            "preferred_username": "alice",
            "org": "acme",
            **claims,
        }
        with pytest.raises(InvalidToken) as caught:
            verifier.verify(jwt.encode(payload, private, algorithm="RS256", headers={"kid": "k1"}))
        return caught.value

    genuine = refused()
    assert genuine.reason == "expired"
    assert genuine.identity == {"username": "alice", "subject": "u1", "org": "acme", "issuer": "https://issuer.example", "verified": True}
    # PyJWT checks expiry before the issuer: a tenant sharing the provider's keys proves nothing.
    other_tenant = refused(iss="https://other-tenant.example")
    assert other_tenant.reason == "expired" and other_tenant.identity == {}
    assert refused(aud="urn:other").identity == {}


def test_private_views_are_filtered_by_the_database(tmp_path):
    """The readable ids reach MLflow's own SQL (its where-clause hooks): a search inside
    `only_readable` returns just those rows, with MLflow's paging, and nothing changes outside it."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    from infinstor_jupyterlab.tracking_service import private_views

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = TrackingStore(uri, str(tmp_path / "artifacts"))
    registry = RegistryStore(uri)
    ids = [tracking.create_experiment(f"exp-{i:02d}") for i in range(12)]
    for i in range(6):
        registry.create_registered_model(f"model-{i}")
    private_views.install(tracking, registry)
    private_views.install(tracking, registry)  # once per store, however often it is called

    readable = {ids[3], ids[7], ids[11]}
    with private_views.only_readable("experiment", readable):
        first = tracking.search_experiments(max_results=2, order_by=["name ASC"])
        second = tracking.search_experiments(max_results=2, order_by=["name ASC"], page_token=first.token)
    assert [e.name for e in first] == ["exp-03", "exp-07"] and first.token
    assert [e.name for e in second] == ["exp-11"] and not second.token
    with private_views.only_readable("experiment", set()):
        assert list(tracking.search_experiments(max_results=100)) == []
    assert len(tracking.search_experiments(max_results=100)) == 13  # the Default experiment too

    with private_views.only_readable("registered_model", {"model-1", "model-4"}):
        assert sorted(m.name for m in registry.search_registered_models(max_results=100)) == ["model-1", "model-4"]
        # An experiment restriction does not leak into model searches, nor the other way round.
        assert len(tracking.search_experiments(max_results=100)) == 13
    assert len(registry.search_registered_models(max_results=100)) == 6


def test_handler_threads_fit_the_database_pool(monkeypatch):
    from infinstor_jupyterlab.tracking_service.concurrency import handler_threads

    for name in ("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"):
        monkeypatch.delenv(name, raising=False)
    assert handler_threads() == 7  # SQLAlchemy's 5 + 10, two connections per handler
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "20")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "20")
    assert handler_threads() == 20
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "200")
    assert handler_threads() == 40  # never more than anyio's default
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "1")
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW", "0")
    assert handler_threads() == 1
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "five")
    with pytest.raises(RuntimeError, match="MLFLOW_SQLALCHEMYSTORE_POOL_SIZE='five' is not a whole number"):
        handler_threads()


# -- MLflow's web UI ---------------------------------------------------------------------------------
def test_every_graphql_field_that_loads_data_is_authorized():
    """Each field of MLflow's GraphQL schema with a resolver of its own (it loads something) is a
    root field authorized as the REST operation it mirrors, or a nested field with its own check,
    or known to reshape its parent's data only. A new MLflow release adding one fails here."""
    import functools

    from graphene.types.resolver import get_default_resolver
    from graphql import GraphQLObjectType

    from infinstor_jupyterlab.tracking_service.graphql_authz import NESTED, ROOT_FIELDS, _schema

    schema = _schema()
    roots = {schema.query_type.name, schema.mutation_type.name}
    own: set[tuple[str, str]] = set()
    for type_name, graphql_type in schema.type_map.items():
        if not isinstance(graphql_type, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in graphql_type.fields.items():
            resolver = field.resolve.func if isinstance(field.resolve, functools.partial) else field.resolve
            if resolver is not get_default_resolver():
                own.add((type_name, field_name))
    root_fields = {field for type_name, field in own if type_name in roots}
    assert root_fields == set(ROOT_FIELDS) | {"test"}  # MLflow's echo field is refused
    assert {key for key in own if key[0] not in roots} == set(NESTED) | {("MlflowMetricExtension", "value")}  # NaN -> null
    policy = load_policy()
    assert all(operation in KINDS and policy.role_for(operation) != "admin" for operation in ROOT_FIELDS.values())


def test_web_ui_background_calls_are_answered_here():
    """Telemetry and the Assistant's configuration are answered by the service: never passed to
    MLflow (nothing is sent anywhere); the Assistant's other calls are refused with the reason."""
    from infinstor_jupyterlab.tracking_service import web_ui
    from infinstor_jupyterlab.tracking_service.company.principals import Principal
    from infinstor_jupyterlab.tracking_service.company.refusals import Refusal

    who = Principal("alice", "acme", ("vision",), None, "oidc")
    records = json.dumps({"records": [{"event_name": "click", "timestamp_ns": 1, "params": {}}]}).encode()
    posted = web_ui.decide(None, who, "POST", "/ajax-api/3.0/mlflow/ui-telemetry", "", records)
    assert posted.respond == (200, b'{"status": "disabled"}')
    config = web_ui.decide(None, who, "GET", "/ajax-api/3.0/mlflow/ui-telemetry", "", None)
    assert json.loads(config.respond[1])["disable_ui_telemetry"] is True
    assistant = json.loads(web_ui.decide(None, who, "GET", "/ajax-api/3.0/mlflow/assistant/config", "", None).respond[1])
    assert assistant["providers"] == {} and assistant["remote_access_allowed"] is False
    assert json.loads(web_ui.decide(None, who, "GET", "/ajax-api/3.0/mlflow/assistant/providers", "", None).respond[1])["providers"] == []
    with pytest.raises(Refusal) as refused:
        web_ui.decide(None, who, "POST", "/ajax-api/3.0/mlflow/assistant/message", "", b"{}")
    assert refused.value.status == 403 and "Assistant is turned off" in refused.value.message
    assert web_ui.decide(None, who, "GET", "/ajax-api/2.0/mlflow/webhooks", "", None) is None  # not the UI's: refused by company


def test_the_ui_page_selects_the_organisation_workspace():
    from infinstor_jupyterlab.tracking_service import web_ui

    page = web_ui._index_page("acme")
    assert page is not None and page.count(b"<script>") == 1 and b'("acme",' in page
    assert page.index(b'("acme",') < page.index(b"</head>") < page.index(b"<body")
    assert b"mlflow.activeWorkspace" in page and b"autoOpenedOnFirstLoad_v1" in page
