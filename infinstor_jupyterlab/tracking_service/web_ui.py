"""MLflow's web UI on the company service: the calls its pages make outside MLflow's REST API.

Each is decided here on purpose (`decide`); anything else that is not an MLflow REST operation
stays refused by `company`:

- `POST /graphql`: authorized field by field like the REST operations it mirrors (graphql_authz);
  `GET /graphql` is refused (the UI posts; a GET would skip the same-origin check of cookie sessions).
- `GET /get-artifact` (a run's artifact), `GET /model-versions/get-artifact` (a registered model
  version's, e.g. its MLmodel), `GET .../logged-models/<id>/artifacts/files` (a logged model's):
  artifact reads, with DownloadArtifact's policy on the run, registered model or logged model.
  `GET .../metrics/get-history-bulk`: GetMetricHistory's policy on every run it names.
- `users/current`: the signed-in identity, as MLflow's UI asks its auth plugin for it. Not an
  MLflow admin (`is_admin` false): MLflow's user and role management pages are not this service's.
  The account page's roles and permissions (`users/roles/list` of oneself, `users/current/permissions`)
  are the caller's grants: their own, each of their groups' and their organisation's.
- The Assistant is off: its configuration answers "no provider, no remote access" and everything
  else of it is refused (it runs an agent on the server with the server's credentials).
- UI telemetry is off: its configuration says disabled, and records are answered "disabled" here,
  never passed to MLflow (nothing is sent anywhere).
- The AI gateway's UI calls (the gateway proxy, its provider and model lists, its invocation
  routes) are for organisation admins, like the gateway's REST operations.
- The UI's page (`GET /`) carries the caller's organisation: it is their only MLflow workspace, so
  the page selects it before MLflow's UI starts (deep links without `?workspace=` land on their
  page, not on "Select a workspace") and does not open the Assistant panel on first visit.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs

from . import graphql_authz
from .company.params import json_bytes
from .company.principals import Outcome, Principal
from .company.refusals import Refusal, bad_request, forbidden

if TYPE_CHECKING:
    from .company.service import CompanyService

_AJAX2, _AJAX3 = "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow"
_LOGGED_MODEL_FILES = re.compile(r"^/ajax-api/2\.0/mlflow/logged-models/(?P<model_id>[^/]+)/artifacts/files/?$")
_GATEWAY_UI = frozenset(
    {
        f"{_AJAX2}/gateway-proxy",
        f"{_AJAX3}/gateway/supported-providers",
        f"{_AJAX3}/gateway/supported-models",
        f"{_AJAX3}/gateway/provider-config",
        f"{_AJAX3}/gateway/secrets/config",
    }
)
ASSISTANT_OFF = (
    "The MLflow Assistant is turned off on this service: it runs an agent on the server with the "
    "server's credentials, which an organisation's member must not have."
)
# What MLflow's UI keeps in the browser's local storage, set by the page for the caller: the selected
# workspace, and the UI's own settings of what this service turns off (as JSON).
WORKSPACE_KEY = "mlflow.activeWorkspace"
UI_SETTINGS = {
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": True,  # do not open the Assistant panel on first visit
    "mlflow.settings.telemetry.enabled_v1": False,  # UI telemetry off (the settings page shows it so)
    "mlflow.telemetry.info.alert.dismissed_v1": True,  # no "MLflow collects usage data" banner
    "mlflow.detectIssues.guidanceShown_v1": True,  # no tip for Detect Issues (server-side LLM jobs: refused)
}


def decide(service: CompanyService, who: Principal, method: str, path: str, query: str, body: bytes | None) -> Outcome | None:
    """The Outcome of one of the UI's own calls, or None for a path that is not one of them."""

    if path == "/graphql":
        if method != "POST":
            raise Refusal(405, "INVALID_PARAMETER_VALUE", "GraphQL is served over POST only.")
        return Outcome(who, "GraphQL", graphql=graphql_authz.check(service, who, body))
    if method == "GET" and path == "/":
        page = _index_page(who.org)
        if page is None:
            return None  # MLflow's source install has no page: MLflow answers
        return Outcome(
            who, respond=(200, page), respond_headers=[(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
        )
    args = parse_qs(query or "")
    reads = method in ("GET", "HEAD")
    if reads and path == "/get-artifact":
        run_id = _first(args, "run_id") or _first(args, "run_uuid") or _missing("run_id")
        service.access.check_run(who, run_id, _need(service, who, "DownloadArtifact"))
        return Outcome(who, "DownloadArtifact")
    if reads and path == "/model-versions/get-artifact":
        service.access.check_model(who, _first(args, "name") or _missing("name"), _need(service, who, "DownloadArtifact"))
        return Outcome(who, "DownloadArtifact")
    if reads and (found := _LOGGED_MODEL_FILES.match(path)):
        service.access.check_logged_model(who, found["model_id"], _need(service, who, "DownloadArtifact"))
        return Outcome(who, "DownloadArtifact")
    if method == "GET" and path == f"{_AJAX2}/metrics/get-history-bulk":
        need = _need(service, who, "GetMetricHistory")
        for run_id in dict.fromkeys(args.get("run_id") or _missing("run_id")):
            service.access.check_run(who, run_id, need)
        return Outcome(who, "GetMetricHistory")
    if method == "GET" and path in ("/api/2.0/mlflow/users/current", f"{_AJAX2}/users/current"):
        user = {"id": service.store.user_id(who.org, who.username), "username": who.username, "is_admin": False}
        return Outcome(who, respond=(200, json_bytes({"user": user, "is_basic_auth": False})))
    if method == "GET" and path in (f"{_AJAX3}/users/roles/list", "/api/3.0/mlflow/users/roles/list"):
        if _first(args, "username") not in (None, who.username):
            raise forbidden("You may list your own roles only.")
        return Outcome(who, respond=(200, json_bytes({"roles": _roles(service, who)})))
    if method == "GET" and path in (f"{_AJAX3}/users/current/permissions", "/api/3.0/mlflow/users/current/permissions"):
        rows = [
            {
                "role_id": role["id"],
                "role_name": role["name"],
                "workspace": role["workspace"],
                **{k: grant[k] for k in ("resource_type", "resource_pattern", "permission")},
            }
            for role in _roles(service, who)
            for grant in role["permissions"]
        ]
        return Outcome(who, respond=(200, json_bytes({"is_admin": False, "permissions": rows})))
    if path.startswith(f"{_AJAX3}/assistant/"):
        if method == "GET" and path == f"{_AJAX3}/assistant/config":
            return Outcome(who, respond=(200, json_bytes({"providers": {}, "projects": {}, "remote_access_allowed": False})))
        if method == "GET" and path == f"{_AJAX3}/assistant/providers":
            return Outcome(who, respond=(200, json_bytes({"providers": [], "resolved": None, "gateway_vendor_options": {}})))
        raise forbidden(ASSISTANT_OFF)
    if path == f"{_AJAX3}/ui-telemetry":
        if method == "GET":
            return Outcome(
                who, respond=(200, json_bytes({"disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0}))
            )
        return Outcome(who, respond=(200, json_bytes({"status": "disabled"})))
    if path in _GATEWAY_UI or path.startswith("/gateway/"):
        if who.is_admin:
            return Outcome(who, "Gateway")
        if method == "GET" and path == f"{_AJAX2}/gateway-proxy":
            # Every experiment's runs page lists the gateway's endpoints: a member has none.
            return Outcome(who, respond=(200, json_bytes({"endpoints": []})))
        raise forbidden("The AI gateway is reserved to organisation admins.")
    return None


_PERMISSION = {"reader": "READ", "editor": "EDIT", "manager": "MANAGE"}  # MLflow's names of our roles


def _roles(service: CompanyService, who: Principal) -> list[dict[str, Any]]:
    """The caller's grants as MLflow's account page shows roles: one for the user's own grants
    (MLflow's "direct permissions"), one per group and one for the organisation."""
    from .service_store import ROLE_RANK

    user_id = service.store.user_id(who.org, who.username) or 0
    principals = [("user", who.username, f"__user_{user_id}__", "Given to you")]
    for group in who.groups:
        admins = group in service.config.org_admin_groups
        principals.append(
            (
                "group",
                group,
                f"group:{group}",
                "Organisation admins: manager of everything in the organisation" if admins else f"Roles of the group {group}",
            )
        )
    principals.append(("org", who.org, f"organisation:{who.org}", f"Roles of everyone in {who.org}"))
    held = service.store.grants_held(who.org, who.username, list(who.groups))
    roles = []
    for number, (kind, name, role_name, description) in enumerate(principals, start=1):
        grants = sorted((g for g in held if (g.principal_type, g.principal) == (kind, name)), key=lambda g: -ROLE_RANK[g.role])
        roles.append(
            {
                "id": number,
                "name": role_name,
                "workspace": who.org,
                "description": description,
                "permissions": [
                    {
                        "id": index,
                        "role_id": number,
                        "resource_type": g.resource_type,
                        "resource_pattern": g.resource_id,
                        "permission": _PERMISSION[g.role],
                    }
                    for index, g in enumerate(grants, start=1)
                ],
            }
        )
    return roles


def is_read(method: str, path: str) -> bool:
    """A call that changes nothing (refused ones are audited only if they would have): GETs, and
    GraphQL, whose every field MLflow serves is a read."""
    return method in ("GET", "HEAD") or path == "/graphql"


def _need(service: CompanyService, who: Principal, operation: str) -> str:
    """The role the policy asks for `operation` (organisation admins only: refused to others here)."""
    need: str = service.policy.role_for(operation)
    if need == "admin" and not who.is_admin:
        raise forbidden(f"{operation} is reserved to organisation admins.")
    return need


def _first(args: dict[str, list[str]], name: str) -> str | None:
    values = args.get(name)
    return values[0] if values else None


def _missing(name: str) -> NoReturn:
    raise bad_request(f"Missing value for required parameter '{name}'.")


# -- the UI's page, with the caller's workspace selected -----------------------------------------
_page: dict[str, bytes | None] = {}
_page_lock = threading.Lock()


def _mlflow_page() -> bytes | None:
    """MLflow's index.html (read once), or None for an install without the built UI."""
    with _page_lock:
        if "index" not in _page:
            from mlflow.server import app

            path = os.path.join(app.static_folder or "", "index.html")
            _page["index"] = open(path, "rb").read() if app.static_folder and os.path.exists(path) else None
        return _page["index"]


# Runs before MLflow's UI (a deferred script): selects the organisation's workspace, remembered and
# in the page's route as MLflow's own workspace picker leaves them, and sets UI_SETTINGS.
_SELECT_WORKSPACE = """<script>(function(w,s){try{localStorage.setItem(%(key)s,w);for(var k in s)localStorage.setItem(k,JSON.stringify(s[k]))}catch(e){}
var h=location.hash||"#/",i=h.indexOf("?"),p=new URLSearchParams(i<0?"":h.slice(i+1));
if(!p.get("workspace")){p.set("workspace",w);history.replaceState(history.state,"",location.pathname+location.search+(i<0?h:h.slice(0,i))+"?"+p)}
})(%(org)s,%(settings)s)</script>"""


def _index_page(org: str) -> bytes | None:
    page = _mlflow_page()
    if page is None or b"</head>" not in page:
        return None
    script = _SELECT_WORKSPACE % {"org": json.dumps(org), "key": json.dumps(WORKSPACE_KEY), "settings": json.dumps(UI_SETTINGS)}
    return page.replace(b"</head>", script.encode() + b"</head>", 1)
