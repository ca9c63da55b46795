"""Company mode: sign-in, organisations, groups, roles and private views on MLflow's own server.

One ASGI middleware in front of MLflow's app (FastAPI routes and the Flask app alike):

1. **Who** (`authentication.py`): a bearer credential: an OIDC access token (JWT, checked by
   `TokenVerifier`), an API token (`inf_...`, stored hashed) or a job-scoped token (HS256, one run).
   Users are provisioned on first sight; their organisation and groups come from token claims.
2. **Where**: the caller's organisation is an MLflow workspace (`principals.workspace_name`). We set
   the workspace header ourselves (whatever the client sent), so MLflow's stores keep organisations
   apart: another organisation's ids answer 404 and its names never appear in lists.
3. **What** (`kinds.py`, `access.py`, `lookups.py`): the request is matched to an MLflow operation
   (see `policy`), the resource it is about is found (MLflow 3 traces, assessments, evaluation
   datasets, scorers, issues and label schemas lead to their experiments), and the caller's role on
   it (user, group and organisation grants; organisation admins manage everything) is compared with
   the role the policy asks for. No role at all answers 404, as if the resource did not exist; too
   small a role answers 403 (`refusals.py`).
4. **Private views** (`searches.py`): experiment and registered model / version searches are
   answered from MLflow's stores, filtered to what the caller holds a role on.
5. **After**: defaults on create (grants written before the client sees the response), grant
   bookkeeping on rename and delete, and an audit record for every write (`audit.py`); refused
   credentials leave a coalesced failed sign-in record (see `signin_audit`).

Our own REST API (tokens, sharing, audit, whoami) is under /api/2.0/infinstor/ (`rest_api.py`).
`service.py` puts the parts together; `middleware.py` is the ASGI app; `params.py` reads request
parameters as MLflow does; `cache.py` holds the caches.
"""
