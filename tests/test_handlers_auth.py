"""Every InfinStor route refuses a request that is not authenticated to Jupyter."""

from __future__ import annotations

import re

import pytest
from tornado.web import RequestHandler

from infinstor_jupyterlab.server.base import InfinStorHandler, NotFoundHandler
from infinstor_jupyterlab.server.routes import API_PREFIX, build_handlers

VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def implemented_verbs(handler: type) -> list[str]:
    return [v for v in VERBS if getattr(handler, v.lower()) is not getattr(RequestHandler, v.lower())]


GROUP_SAMPLES = {"job_id": "0123456789abcdef"}


def concrete_path(pattern: str) -> str:
    """Fill each capture group with a value its regex accepts, so the route (not a 404) answers."""

    def sample(match: re.Match) -> str:
        value = GROUP_SAMPLES.get(match.group(1) or "", "x")
        assert re.fullmatch(match.group(2), value), (pattern, value)
        return value

    return re.sub(r"\((?:\?P<(\w+)>)?((?:[^()]|\([^()]*\))*)\)", sample, pattern)


def test_every_route_uses_the_base_handler_and_lives_under_the_api_prefix():
    handlers = build_handlers()
    assert handlers
    for pattern, handler, *_ in handlers:
        assert pattern.startswith(API_PREFIX + "/"), pattern
        assert issubclass(handler, InfinStorHandler), handler
        assert implemented_verbs(handler), handler


def test_routes_are_registered_with_the_server(jp_serverapp):
    registered = set()
    for rule in jp_serverapp.web_app.wildcard_router.rules:
        registered.add(getattr(rule.matcher, "regex", re.compile("")).pattern)
    for rule in jp_serverapp.web_app.default_router.rules:
        for sub in getattr(rule.target, "rules", []):
            registered.add(getattr(sub.matcher, "regex", re.compile("")).pattern)
    for pattern, *_ in build_handlers():
        assert any(p.rstrip("$").endswith(pattern) for p in registered), pattern


@pytest.mark.parametrize(
    "pattern,verb",
    [(p, v) for p, h, *_ in build_handlers() for v in implemented_verbs(h)],
)
async def test_unauthenticated_requests_are_refused(http_server_client, jp_base_url, pattern, verb):
    url = f"{jp_base_url.rstrip('/')}{concrete_path(pattern)}"
    body = b"{}" if verb in ("POST", "PUT", "PATCH") else None
    response = await http_server_client.fetch(url, method=verb, body=body, raise_error=False, follow_redirects=False)
    assert response.code == 403, (verb, url, response.code)
    # A forged token is no better.
    response = await http_server_client.fetch(
        url, method=verb, body=body, raise_error=False, follow_redirects=False,
        headers={"Authorization": "token not-the-token"},
    )
    assert response.code == 403, (verb, url, response.code)


def test_openapi_spec_lists_every_route():
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).parents[1] / "docs" / "openapi.yaml").read_text())
    documented = {
        (path, verb.upper()) for path, item in spec["paths"].items() for verb in item if verb != "parameters"
    }
    routed = {
        (re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern[len(API_PREFIX):]), verb)
        for pattern, handler, *_ in build_handlers()
        for verb in implemented_verbs(handler)
        if handler is not NotFoundHandler  # the JSON 404 for unknown routes is no route of its own
    }
    assert routed == documented


def test_openapi_spec_is_valid_openapi():
    """docs/openapi.yaml is a valid OpenAPI 3.0 document (schemathesis runs against it in CI)."""
    from pathlib import Path

    import yaml
    from openapi_spec_validator import validate

    validate(yaml.safe_load((Path(__file__).parents[1] / "docs" / "openapi.yaml").read_text()))
