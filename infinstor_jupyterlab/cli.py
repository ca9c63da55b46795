"""`infinstor`: sign in to an InfinStor tracking service, and turn notebooks into MLflow projects.

    infinstor login [--service URL] [--issuer URL] [--client-id ID]   device code sign-in
    infinstor login --token TOKEN | --token -                         store an API token
    infinstor logout [--service URL]
    infinstor whoami [--service URL] [--json]
    infinstor token create --name NAME [--days N] | list [--all] | revoke ID   API tokens (company service)
    infinstor token create --kind job --run-id RUN [--ttl SECONDS]    a job token for one run
    infinstor token create --kind scim --name NAME | list --kind scim | revoke --kind scim ID   SCIM tokens (admins)
    infinstor share list|grant|revoke (--experiment ID | --model NAME) [--user U | --group G | --org O] [--role R]
    infinstor share org-readable [--dry-run]                          share every model with the organisation (admins)
    infinstor service check [--token T] [--lab-url URL] [--json]       check a tracking service's setup (on its host)
    infinstor service migrate [--check [--wait S]]                    its database migrations (a deployment's job)
    infinstor project NOTEBOOK [-o DIR] [--include-folder]            notebook -> MLflow project
    infinstor agent [--config FILE] [--instance-id ID]                the job agent of an EC2 VM

Credentials go to the same per-user token store the lab and its kernels use, so signing in once
covers `mlflow` commands (MLFLOW_TRACKING_URI=infinstor://HOST/), notebooks and the sidebar.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .credentials.manager import CredentialManager, expiry_text
from .credentials.oidc import AUDIENCE_ENV, CLIENT_ID_ENV, ISSUER_ENV, SCOPES_ENV, OIDCSettings
from .credentials.tokens import TokenStore, TokenStoreError
from .credentials.urls import SERVICE_URI_ENV
from .errors import InfinStorError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DUE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CLIError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.message, self.code = message, code


def _default_service() -> str:
    for name in (SERVICE_URI_ENV, "INFINSTOR_TRACKING_URI", "MLFLOW_TRACKING_URI"):
        value = os.environ.get(name, "").strip()
        if value and value.split(":", 1)[0].lower() in ("https", "http", "infinstor"):
            return value
    return ""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--service",
        default=None,
        help=f"The tracking service (https://HOST, infinstor://HOST). Default: ${SERVICE_URI_ENV}, "
        "$INFINSTOR_TRACKING_URI or $MLFLOW_TRACKING_URI.",
    )
    common.add_argument("--issuer", default=None, help=f"OpenID Connect issuer URL (default ${ISSUER_ENV}).")
    common.add_argument("--client-id", default=None, help=f"OAuth client id (default ${CLIENT_ID_ENV}).")
    common.add_argument("--scopes", default=None, help=f"Scopes, space-separated (default ${SCOPES_ENV}).")
    common.add_argument("--audience", default=None, help=f"Access token audience / resource (default ${AUDIENCE_ENV}).")
    common.add_argument("--token-store", default=None, help="Token store file (default $INFINSTOR_TOKEN_STORE or the InfinStor data dir).")

    parser = argparse.ArgumentParser(prog="infinstor", description="Sign in to an InfinStor MLflow tracking service.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    login = sub.add_parser("login", parents=[common], help="Sign in (device code), or store an API token with --token.")
    login.add_argument(
        "--token", default=None, metavar="TOKEN", help="Store this API token instead of signing in ('-' reads it from stdin)."
    )
    login.add_argument("--no-verify", action="store_true", help="With --token: do not check the token against the service first.")
    sub.add_parser("logout", parents=[common], help="Sign out: revoke and forget the stored credentials.")
    whoami = sub.add_parser("whoami", parents=[common], help="Who is signed in, and until when.")
    whoami.add_argument("--json", action="store_true", help="Print JSON.")
    token = sub.add_parser("token", help="API tokens for automation, on a company tracking service.")
    token_sub = token.add_subparsers(dest="token_command", metavar="ACTION")
    token_sub.required = True
    token_create = token_sub.add_parser(
        "create",
        parents=[common],
        help="Create an API token, or a job token for one run (printed once).",
        description="API token (--kind api, the default): acts as you, for automation; needs --name. Job token (--kind job): "
        "writes one MLflow run and reads it and its experiment, nothing else, for a short time; needs --run-id and "
        "that you may edit the run, and the service's INFINSTOR_JOB_TOKEN_SECRET.",
    )
    token_create.add_argument(
        "--kind",
        choices=("api", "job", "scim"),
        default="api",
        help="api (default), job, or scim (for the organisation's directory to provision users and groups; admins).",
    )
    token_create.add_argument("--name", default=None, help="API token: what it is for (shown by `token list`).")
    token_create.add_argument("--days", type=float, default=None, help="API token: days until it expires (default: the service's default).")
    token_create.add_argument("--run-id", default=None, help="Job token: the MLflow run it may write.")
    token_create.add_argument("--ttl", type=float, default=None, metavar="SECONDS", help="Job token: seconds it lives (default 3600).")
    token_create.add_argument("--job-id", default=None, help="Job token: a name for the job, shown as job:<id> in the audit log.")
    token_create.add_argument("--json", action="store_true", help="Print JSON.")
    token_list = token_sub.add_parser(
        "list", parents=[common], help="Your API tokens, or the organisation's SCIM tokens (never their secrets)."
    )
    token_list.add_argument("--kind", choices=("api", "scim"), default="api", help="api (default) or scim.")
    token_list.add_argument("--all", action="store_true", help="Every token of your organisation (organisation admins).")
    token_list.add_argument("--json", action="store_true", help="Print JSON.")
    token_revoke = token_sub.add_parser("revoke", parents=[common], help="Revoke an API (or SCIM) token by its id.")
    token_revoke.add_argument("--kind", choices=("api", "scim"), default="api", help="api (default) or scim.")
    token_revoke.add_argument("token_id", metavar="ID")
    share = sub.add_parser("share", help="Who may use an experiment or registered model, on a company tracking service.")
    share_sub = share.add_subparsers(dest="share_command", metavar="ACTION")
    share_sub.required = True
    for action, text in (("list", "List who holds a role."), ("grant", "Give a role."), ("revoke", "Take a role away.")):
        command = share_sub.add_parser(action, parents=[common], help=text)
        target = command.add_mutually_exclusive_group(required=True)
        target.add_argument("--experiment", metavar="ID", help="An experiment id.")
        target.add_argument("--model", metavar="NAME", help="A registered model name.")
        if action != "list":
            principal = command.add_mutually_exclusive_group(required=True)
            principal.add_argument("--user", help="A user name.")
            principal.add_argument("--group", help="A group (as the identity provider names it).")
            principal.add_argument("--org", help="Your whole organisation.")
        if action == "grant":
            command.add_argument("--role", required=True, choices=("reader", "editor", "manager"))
        command.add_argument("--json", action="store_true", help="Print JSON.")
    org_readable = share_sub.add_parser(
        "org-readable",
        parents=[common],
        help="Give your organisation read access to every registered model that has no organisation grant yet (organisation admins).",
    )
    org_readable.add_argument("--dry-run", action="store_true", help="Only list the models it would share.")
    org_readable.add_argument("--json", action="store_true", help="Print JSON.")
    service = sub.add_parser("service", help="For the platform admin, on a tracking service's host: check it, migrate its database.")
    service_sub = service.add_subparsers(dest="service_command", metavar="ACTION")
    service_sub.required = True
    check = service_sub.add_parser(
        "check",
        help="Check the configuration, policy, database and identity provider (and a token) as a replica would see them.",
        description="Reads the same environment as the service (INFINSTOR_SERVICE_CONFIG, INFINSTOR_*, MLFLOW_BACKEND_STORE_URI). "
        "Exit code 0: no failure (warnings allowed); 1: at least one failure.",
    )
    check.add_argument(
        "--config", default=None, metavar="FILE", help="The service's configuration file (default $INFINSTOR_SERVICE_CONFIG)."
    )
    check.add_argument(
        "--database-uri", default=None, metavar="URI", help="The database (default: database_uri, else $MLFLOW_BACKEND_STORE_URI)."
    )
    check.add_argument(
        "--token", default=None, metavar="TOKEN", help="A real access token from the provider to analyse ('-' reads it from stdin)."
    )
    check.add_argument(
        "--lab-url", default=None, metavar="URL", help="JupyterLab's URL (with its base URL), for the redirect URI to register."
    )
    check.add_argument("--service-url", default=None, metavar="URL", help="The service's public URL, for the web UI's redirect URI.")
    check.add_argument("--json", action="store_true", help="Print JSON.")
    migrate = service_sub.add_parser(
        "migrate", help="Apply MLflow's and the service's database migrations (a deployment's migration job), or wait for them."
    )
    migrate.add_argument("--database-uri", default=None, metavar="URI", help="MLflow's database (default $MLFLOW_BACKEND_STORE_URI).")
    migrate.add_argument("--check", action="store_true", help="Change nothing: exit 0 if no migration is due, 3 if one is.")
    migrate.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS", help="With --check: wait up to this long for the migrations to be applied."
    )
    project = sub.add_parser("project", help="Turn a notebook into a standard MLflow project directory.")
    project.add_argument("notebook", help="The notebook (.ipynb); its cell tagged `parameters` becomes the entry point's parameters.")
    project.add_argument(
        "-o", "--output", default=None, metavar="DIR", help="Where to write the project (default: <notebook>-mlproject beside it)."
    )
    project.add_argument(
        "--include-folder",
        action="store_true",
        help="Copy the files beside the notebook too (size-capped; skips .git, checkpoints, virtualenvs).",
    )
    project.add_argument("--overwrite", action="store_true", help="Replace DIR if it exists and is not empty.")
    project.add_argument("--json", action="store_true", help="Print the project's description as JSON.")
    agent = sub.add_parser("agent", help="Run the job agent of an EC2 VM (started by the VM's user data).", add_help=False)
    agent.add_argument("agent_args", nargs=argparse.REMAINDER, help="Options of the agent (see `infinstor agent --help`).")
    return parser


def _manager(args) -> CredentialManager:
    service = (args.service or _default_service()).strip()
    if not service:
        raise CLIError(
            f"No tracking service given: pass --service https://HOST (or infinstor://HOST), or set ${SERVICE_URI_ENV}.",
            EXIT_USAGE,
        )
    settings = OIDCSettings.from_environment(issuer=args.issuer, client_id=args.client_id, scopes=args.scopes, audience=args.audience)
    try:
        store = TokenStore(args.token_store) if args.token_store else TokenStore()
    except TokenStoreError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    return CredentialManager(service, store=store, settings=settings)


def _print(*parts: str) -> None:
    print(*parts, flush=True)


def _login(args) -> int:
    manager = _manager(args)
    if args.token is not None:
        token = sys.stdin.readline() if args.token == "-" else args.token
        if not token.strip():
            raise CLIError("No token given (--token - reads it from the first line of stdin).", EXIT_USAGE)
        if not args.no_verify:
            _check_token(manager, token.strip())
        tokens = manager.save_api_token(token)
        _print(f"Stored an API token for {manager.service} ({tokens.identity.name or 'unknown user'}; {expiry_text(tokens)}).")
        return EXIT_OK
    if not manager.auth_configured:
        raise CLIError(
            f"No identity provider configured: pass --issuer URL and --client-id ID, or set ${ISSUER_ENV} and ${CLIENT_ID_ENV}.",
            EXIT_USAGE,
        )
    device = manager.begin_device_sign_in()
    _print(f"To sign in to {manager.service}, open this page in a browser:")
    _print(f"  URL:  {device.verification_uri_complete or device.verification_uri}")
    _print(f"  Code: {device.user_code}")
    _print(f"Check that the page shows the same code. Waiting (the code expires in {int(device.expires_in // 60)} min)...")
    tokens = manager.complete_device_sign_in(device)
    who = tokens.identity
    _print(f"Signed in to {manager.service} as {who.name}" + (f" <{who.email}>" if who.email else "") + ".")
    return EXIT_OK


def _check_token(manager: CredentialManager, token: str) -> None:
    import requests

    url = f"{manager.service_url}/api/2.0/mlflow/experiments/search"
    try:
        response = requests.get(url, params={"max_results": 1}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    except requests.RequestException as exc:
        raise CLIError(
            f"Cannot reach {manager.service} to check the token ({type(exc).__name__}); use --no-verify to store it anyway."
        ) from None
    if response.status_code == 401:
        raise CLIError(f"{manager.service} refused this token (HTTP 401); nothing was stored.")


def _logout(args) -> int:
    manager = _manager(args)
    tokens = manager.sign_out()
    if tokens is None:
        _print(f"Not signed in to {manager.service}.")
    else:
        _print(f"Signed out of {manager.service} ({tokens.identity.name}).")
    return EXIT_OK


def _whoami(args) -> int:
    manager = _manager(args)
    tokens = manager.tokens()
    if tokens is None or (tokens.expired and not tokens.refreshable):
        state = f"Not signed in to {manager.service}" if tokens is None else f"The stored credentials for {manager.service} have expired"
        raise CLIError(f"{state}. Run `infinstor login --service {manager.service_url}`.")
    who = tokens.identity
    info = {
        "service": manager.service,
        "user": who.name,
        "display_name": who.display_name,
        "email": who.email,
        "org": who.org,
        "groups": who.groups,
        "kind": tokens.kind,
        "expires_at": tokens.expires_at,
        "refreshable": tokens.refreshable,
    }
    if args.json:
        _print(json.dumps(info, indent=2))
        return EXIT_OK
    _print(f"Service: {manager.service}")
    _print(f"User:    {who.name}" + (f" ({who.display_name})" if who.display_name and who.display_name != who.name else ""))
    _print(f"Email:   {who.email or '-'}")
    _print(f"Org:     {who.org or '-'}")
    _print(f"Groups:  {', '.join(who.groups) or '-'}")
    renew = ", renewed automatically" if tokens.refreshable else ""
    _print(f"Token:   {'API token' if tokens.kind == 'api_token' else 'signed in'}; {expiry_text(tokens)}{renew}")
    return EXIT_OK


def _service_api(
    manager: CredentialManager, method: str, endpoint: str, *, params=None, body=None, prefix: str = "api/2.0/infinstor"
) -> dict:
    """Call the company service's own API (/api/2.0/infinstor/...), or with `prefix` another of its
    APIs, with the stored credentials."""
    import requests

    url = f"{manager.service_url}/{prefix}/{endpoint}"
    for attempt in (1, 2):
        try:
            response = requests.request(method, url, params=params, json=body, headers=manager.request_headers(), timeout=60)
        except requests.RequestException as exc:
            raise CLIError(f"Cannot reach {manager.service} ({type(exc).__name__}).") from None
        if response.status_code == 401 and attempt == 1 and manager.refresh_after_rejection():
            continue
        break
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code == 404 and not data.get("error_code"):
        raise CLIError(f"{manager.service} has no InfinStor API (is it a company tracking service?).")
    if response.status_code >= 400:
        raise CLIError(f"{manager.service} refused ({response.status_code}): {data.get('message') or response.reason}")
    return data


def _when(ms) -> str:
    import datetime

    return "-" if ms is None else datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _token(args) -> int:
    manager = _manager(args)
    if args.token_command == "create" and args.kind == "job":
        body = {
            "kind": "job",
            "run_id": args.run_id,
            **({"ttl_seconds": args.ttl} if args.ttl is not None else {}),
            **({"job_id": args.job_id} if args.job_id else {}),
        }
        data = _service_api(manager, "POST", "tokens", body=body)
        if args.json:
            _print(json.dumps(data, indent=2))
        else:
            print(
                f"Created a job token for run {data['run_id']} (experiment {data['experiment_id']}), valid {data['expires_in']} s. "
                "It is shown once: hand it to the job now.",
                file=sys.stderr,
            )
            _print(data["token"])
        return EXIT_OK
    if args.token_command == "create" and args.kind == "scim":
        data = _service_api(manager, "POST", "scim-tokens", body={"name": args.name})
        if args.json:
            _print(json.dumps(data, indent=2))
        else:
            print(
                f"Created SCIM token {data['id']} ({data['name']}) for your organisation's directory; give it, with the SCIM "
                f"URL {manager.service_url}/scim/v2, to the directory's provisioning. It is shown once: store it now.",
                file=sys.stderr,
            )
            _print(data["token"])
        return EXIT_OK
    if args.token_command in ("list", "revoke") and args.kind == "scim":
        if args.token_command == "revoke":
            _service_api(manager, "DELETE", f"scim-tokens/{args.token_id}")
            _print(f"Revoked SCIM token {args.token_id}.")
            return EXIT_OK
        tokens = _service_api(manager, "GET", "scim-tokens")["tokens"]
        if args.json:
            _print(json.dumps(tokens, indent=2))
            return EXIT_OK
        for t in tokens or []:
            state = "revoked" if t["revoked_at"] else "active"
            _print(
                f"{t['id']}  {t['name']}  (by {t['created_by']}; created {_when(t['created_at'])}; {state}; last used {_when(t['last_used_at'])})"
            )
        if not tokens:
            _print("No SCIM tokens.")
        return EXIT_OK
    if args.token_command == "create":
        body = {"name": args.name, **({"expires_in_days": args.days} if args.days is not None else {})}
        data = _service_api(manager, "POST", "tokens", body=body)
        if args.json:
            _print(json.dumps(data, indent=2))
        else:
            print(
                f"Created API token {data['id']} ({data['name']}), expires {_when(data['expires_at'])}. It is shown once: store it now.",
                file=sys.stderr,
            )
            _print(data["token"])
        return EXIT_OK
    if args.token_command == "list":
        tokens = _service_api(manager, "GET", "tokens", params={"all": "true"} if args.all else None)["tokens"]
        if args.json:
            _print(json.dumps(tokens, indent=2))
            return EXIT_OK
        if not tokens:
            _print("No API tokens.")
        for t in tokens:
            state = "revoked" if t["revoked_at"] else f"expires {_when(t['expires_at'])}"
            _print(
                f"{t['id']}  {t['name']}  ({t['username']}; created {_when(t['created_at'])}; {state}; last used {_when(t['last_used_at'])})"
            )
        return EXIT_OK
    _service_api(manager, "DELETE", f"tokens/{args.token_id}")
    _print(f"Revoked API token {args.token_id}.")
    return EXIT_OK


def _share(args) -> int:
    manager = _manager(args)
    if args.share_command == "org-readable":
        return _share_org_readable(manager, args)
    resource = (
        {"resource_type": "experiment", "resource_id": args.experiment}
        if args.experiment
        else {"resource_type": "registered_model", "resource_id": args.model}
    )
    if args.share_command == "list":
        grants = _service_api(manager, "GET", "permissions", params=resource)["permissions"]
        if args.json:
            _print(json.dumps(grants, indent=2))
            return EXIT_OK
        for g in grants:
            _print(f"{g['role']:8} {g['principal_type']:5} {g['principal']}  (by {g['granted_by'] or '-'}, {_when(g['granted_at'])})")
        return EXIT_OK
    kind, name = ("user", args.user) if args.user else ("group", args.group) if args.group else ("org", args.org)
    body = {**resource, "principal_type": kind, "principal": name}
    if args.share_command == "grant":
        data = _service_api(manager, "POST", "permissions", body={**body, "role": args.role})
        message = f"{kind} {name} is now {args.role} of {resource['resource_type']} {resource['resource_id']}."
    else:
        data = _service_api(manager, "DELETE", "permissions", body=body)
        message = f"{kind} {name} no longer holds a role on {resource['resource_type']} {resource['resource_id']}."
    _print(json.dumps(data, indent=2) if args.json else message)
    return EXIT_OK


def _share_org_readable(manager: CredentialManager, args) -> int:
    """Apply `registered_models_org_readable` to the models that existed before it: every
    registered model of the organisation without an organisation grant gets one (reader)."""
    me = _service_api(manager, "GET", "whoami")
    if not me.get("admin"):
        raise CLIError(
            f"Only organisation admins may share every registered model; {me.get('username')} is not an admin of {me.get('org')}."
        )
    org, names, token = me["org"], [], None
    while True:  # an organisation admin's search is MLflow's own: every model of the organisation
        page = _service_api(
            manager,
            "GET",
            "registered-models/search",
            params={"max_results": 1000, **({"page_token": token} if token else {})},
            prefix="api/2.0/mlflow",
        )
        names += [m["name"] for m in page.get("registered_models", [])]
        token = page.get("next_page_token")
        if not token:
            break
    shared = []
    for name in names:
        resource = {"resource_type": "registered_model", "resource_id": name}
        grants = _service_api(manager, "GET", "permissions", params=resource)["permissions"]
        if any(g["principal_type"] == "org" for g in grants):
            continue  # shared already (or deliberately with another role): left as it is
        if not args.dry_run:
            _service_api(manager, "POST", "permissions", body={**resource, "principal_type": "org", "principal": org, "role": "reader"})
        shared.append(name)
    if args.json:
        _print(json.dumps({"org": org, "dry_run": args.dry_run, "shared": shared, "models": len(names)}, indent=2))
        return EXIT_OK
    for name in shared:
        _print(f"{'would share' if args.dry_run else 'shared'}: {name}")
    verb = "Would give" if args.dry_run else "Gave"
    _print(
        f"{verb} organisation {org} the reader role on {len(shared)} registered models ({len(names) - len(shared)} of {len(names)} "
        "already had an organisation grant)."
    )
    return EXIT_OK


def _service(args) -> int:
    from .tracking_service import startup

    environ = dict(os.environ)
    if getattr(args, "config", None):
        environ["INFINSTOR_SERVICE_CONFIG"] = args.config
    if args.service_command == "check":
        from .tracking_service import check

        token = sys.stdin.readline() if args.token == "-" else args.token
        report = check.run(environ, token=token, lab_url=args.lab_url, service_url=args.service_url, database_uri=args.database_uri)
        _print(json.dumps(report.to_json(), indent=2) if args.json else check.render(report))
        return EXIT_OK if report.ok else EXIT_FAILED
    import time

    try:
        mlflow_uri, ours = startup.databases(environ, args.database_uri)
        if not args.check:
            for line in startup.migrate_all(mlflow_uri, ours):
                _print(line)
            return EXIT_OK
        deadline = time.monotonic() + max(args.wait, 0)
        while True:
            try:
                pending = startup.due(mlflow_uri, ours)
            except startup.StartupRefusal:
                raise
            except Exception as exc:  # the database is not reachable yet: keep waiting
                pending = [f"cannot read the database yet ({type(exc).__name__})"]
            if not pending:
                _print("No migration is due.")
                return EXIT_OK
            if time.monotonic() >= deadline:
                print(
                    "infinstor: migrations are due: " + "; ".join(pending) + ". Run `infinstor service migrate` (the deployment's "
                    "migration job does).",
                    file=sys.stderr,
                )
                return EXIT_DUE
            time.sleep(min(5.0, max(deadline - time.monotonic(), 0.1)))
    except startup.StartupRefusal as refusal:
        print(refusal.paragraph(), file=sys.stderr)
        return EXIT_USAGE


def _project(args) -> int:
    from .limits import check_path, clip, shown
    from .projects import build_project

    check_path("notebook", args.notebook)
    if args.output:
        check_path("--output", args.output)
    try:
        info = build_project(args.notebook, args.output, include_folder=args.include_folder, overwrite=args.overwrite)
    except (OSError, RuntimeError) as exc:  # e.g. a symlink loop, a name the file system refuses
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = getattr(exc, "filename", None)
        raise CLIError(f"{shown(where) + ': ' if where else ''}cannot be used: {clip(detail)}", EXIT_USAGE) from None
    if args.json:
        _print(json.dumps(info.to_json(), indent=2))
        return EXIT_OK
    _print(f"Wrote MLflow project {info.name!r} to {info.path}")
    if info.parameters:
        _print("Parameters: " + ", ".join(f"{p.name}={p.default!r} ({p.kind})" for p in info.parameters))
    else:
        _print("Parameters: none (tag a cell `parameters` to declare some)")
    _print(f"Python {info.python_env['python']}; {len(info.python_env['dependencies'])} pinned dependencies in python_env.yaml")
    _print(f"Run it:   mlflow run {info.path} --env-manager local" + "".join(f" -P {p.name}=..." for p in info.parameters[:2]))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["agent"]:  # the agent parses its own options (argparse REMAINDER drops leading ones)
        from .ec2.agent import main as agent_main

        return agent_main(argv[1:]) or EXIT_OK
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "token" and args.token_command == "create":
        needed = {"job": ("--run-id", args.run_id), "api": ("--name", args.name), "scim": ("--name", args.name)}[args.kind]
        if not needed[1]:
            parser.error(f"token create --kind {args.kind} needs {needed[0]}")
    handler = {
        "login": _login,
        "logout": _logout,
        "whoami": _whoami,
        "token": _token,
        "share": _share,
        "project": _project,
        "service": _service,
    }[args.command]
    try:
        return handler(args)
    except CLIError as exc:
        print(f"infinstor: {exc.message}", file=sys.stderr)
        return exc.code
    except InfinStorError as exc:
        print(f"infinstor: {exc.message}", file=sys.stderr)
        return EXIT_USAGE if exc.status == 400 else EXIT_FAILED
    except KeyboardInterrupt:
        print("\ninfinstor: cancelled.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
