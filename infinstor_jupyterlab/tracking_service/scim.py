"""SCIM 2.0 provisioning at `/scim/v2/` (RFC 7643, 7644), one directory per organisation.

A company's directory (Entra ID, Okta, ...) creates, updates and deletes the organisation's users
and groups here. The protocol (validation, filters, PATCH, PUT, ETags, paging, discovery at
`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`) is `scim2-server`'s, over the SCIM models
of `scim2-models`; `SqlStorage` below keeps the resources in our tables (`directory.py`), so every
replica serves the same directory. What provisioning means for access is `directory.Directory`.

Authentication: `Authorization: Bearer scim_<id>_<secret>`, a SCIM token an organisation admin
created (`infinstor token create --kind scim`, or `POST /api/2.0/infinstor/scim-tokens`). The
token names the organisation; no other credential is accepted here, and a SCIM token is accepted
nowhere else. Only `GET /scim/v2/ServiceProviderConfig` needs none (RFC 7643 §5): it describes
the protocol, nothing of an organisation. Writes are audited as `scim:<token name>`.
"""

from __future__ import annotations

import contextvars
import datetime
import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from urllib.parse import parse_qsl

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    External,
    Filter,
    InvalidFilterException,
    InvalidValueException,
    Meta,
    NotFoundException,
    NotImplementedException,
    Patch,
    PreconditionFailedException,
    Reference,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimFilter,
    ScimProvider,
    SearchRequest,
    ServiceProviderConfig,
    Sort,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.applications.base import BaseApplication
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import load_default_resource_types, load_default_schemas

from . import asgi
from .directory import Conflict, DirectoryStore, Member, Row, ScimTokenRecord

if TYPE_CHECKING:
    from .company.service import CompanyService

T = TypeVar("T")

PREFIX = "/scim/v2"
MAX_RESULTS = 200
MAX_BODY = 1024 * 1024
_org: contextvars.ContextVar[str] = contextvars.ContextVar("infinstor_scim_org")


def provider() -> ScimProvider:
    """The RFC 7643 User (with the enterprise extension) and Group, and what this server supports."""
    config = ServiceProviderConfig(
        documentation_uri=Reference[External](
            "https://github.com/infinstor/infinstor-jupyterlab/blob/main/docs/service.md#scim-20-provisioning"
        ),
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="SCIM token",
                primary=True,
                description="A SCIM token of the organisation, created by one of its admins (infinstor token create --kind scim)",
            )
        ],
    )
    return ScimProvider.from_discovery(load_default_schemas().values(), load_default_resource_types().values(), config=config)


def _when(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC)


def _version(row: Row) -> str:
    return f'W/"{row.version}"'


def _expected(version: str | None) -> int | None:
    if version is None:
        return None
    try:
        return int(version.removeprefix("W/").strip('"'))
    except ValueError:
        raise PreconditionFailedException() from None


class SqlStorage(ScimStorage):
    """scim2-server's storage over `DirectoryStore`, for the organisation of the current request."""

    def __init__(self, store: DirectoryStore, scim_provider: ScimProvider):
        self.store, self.provider = store, scim_provider

    @staticmethod
    def _org() -> str:
        return _org.get()

    def _resource(self, resource_type: ResourceType, row: Row) -> Resource[Any]:
        data = dict(row.resource)
        if resource_type.name == "Group":
            data["members"] = [{"value": m, "type": t, "$ref": f"{t}s/{m}", **({"display": d} if d else {})} for m, t, d in row.members]
        else:
            data["groups"] = [{"value": g, "$ref": f"Groups/{g}", "display": name, "type": "direct"} for g, name in row.groups]
        data = {k: v for k, v in data.items() if v not in (None, [])}
        model = self.provider.model_for(resource_type)
        if model is None:
            raise NotImplementedException(detail=f"no {resource_type.name} resources here")
        resource = cast("Resource[Any]", model.model_validate(data))
        resource.id = row.scim_id
        resource.meta = Meta(
            resource_type=resource_type.name, created=_when(row.created_at), last_modified=_when(row.modified_at), version=_version(row)
        )
        return resource

    @staticmethod
    def _dump(resource: Resource[Any]) -> dict[str, Any]:
        """What we keep of a resource: everything but what the columns and tables hold."""
        data = resource.model_dump(mode="json")
        for key in ("id", "meta", "members", "groups"):
            data.pop(key, None)
        return data

    @staticmethod
    def _members(resource: Resource[Any]) -> list[Member]:
        members: list[Member] = []
        for member in getattr(resource, "members", None) or []:
            kind = str(member.type or "User")
            if kind not in ("User", "Group") or not member.value:
                raise InvalidValueException(detail=f"a member must be a User or a Group with a value, not {kind!r}")
            members.append((str(member.value), kind, member.display))
        return members

    # -- ScimStorage --------------------------------------------------------------------------
    def get(
        self, resource_type: ResourceType, resource_id: str, *, response_parameters: ResponseParameters[Any] | None = None
    ) -> Resource[Any]:
        rows = (self.store.users if resource_type.name == "User" else self.store.groups)(self._org(), scim_id=resource_id)
        if not rows:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return self._resource(resource_type, rows[0])

    def _candidates(self, resource_type: ResourceType, scim_filter: ScimFilter[Any] | None) -> list[Row]:
        """The rows a search looks at: narrowed in SQL for `attr eq "value"` on an indexed attribute."""
        org = self._org()
        narrowed: dict[str, str] = {}
        ast = scim_filter.ast if scim_filter is not None else None
        if isinstance(ast, Comparison) and ast.op == CompareOperator.eq and isinstance(ast.value, str):
            attribute = str(ast.attr_path).split(":")[-1].lower()
            column = {
                "User": {"username": "user_name", "externalid": "external_id", "id": "scim_id"},
                "Group": {"displayname": "display_name", "externalid": "external_id", "id": "scim_id"},
            }[str(resource_type.name)]
            if attribute in column:
                narrowed[column[attribute]] = ast.value
        if resource_type.name == "User":
            return self.store.users(org, **narrowed)
        return self.store.groups(org, **narrowed)

    def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *, position: Any = None) -> SearchPage:
        scim_filter = search_request.filter
        found: list[Resource[Any]] = []
        for resource_type in resource_types:
            if resource_type.name not in ("User", "Group"):
                raise NotImplementedException(detail=f"no {resource_type.name} resources here")
            model = self.provider.model_for(resource_type)
            # A generic parametrised at run time (the resource type's model): beyond static typing.
            typed = ScimFilter[model](str(scim_filter)) if scim_filter is not None and len(resource_types) > 1 else scim_filter  # type: ignore[valid-type]
            try:
                resources = [self._resource(resource_type, row) for row in self._candidates(resource_type, scim_filter)]
                found += [r for r in resources if typed is None or typed.match(r)]
            except InvalidFilterException:
                raise
            except (TypeError, ValueError) as exc:
                raise InvalidFilterException(detail=str(exc)) from None
        if search_request.sort_by is not None:
            descending = search_request.sort_order == SearchRequest.SortOrder.descending
            keyed = [(search_request.sort_value(r), r.id, r) for r in found]
            present = sorted((k for k in keyed if k[0] is not None), key=lambda k: (k[0], k[1]), reverse=descending)
            found = [k[2] for k in present] + [k[2] for k in keyed if k[0] is None]  # missing values last
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    # A resource is an instance of a model scim2-server builds at run time from the schemas (User
    # with the enterprise extension, Group): its attributes (user_name, display_name, ...) are
    # unknown to the type checker, so create and update read them through `fields`, typed Any.
    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        org = self._org()
        fields: Any = resource
        if resource_type.name == "User":
            try:
                row = self.store.create_user(org, fields.user_name, fields.external_id, fields.active is not False, self._dump(resource))
            except Conflict:
                raise UniquenessException(detail=f"userName {fields.user_name!r} is taken") from None
        else:
            try:
                row = self.store.create_group(org, fields.display_name, fields.external_id, self._dump(resource), self._members(resource))
            except LookupError as exc:
                raise InvalidValueException(detail=f"no member with id {exc.args[0]!r} in this directory") from None
        return self.get(resource_type, row.scim_id)

    def update(self, resource_type: ResourceType, resource: Resource[Any], *, expected_version: str | None = None) -> Resource[Any]:
        org, expected = self._org(), _expected(expected_version)
        fields: Any = resource
        try:
            if resource_type.name == "User":
                row = self.store.update_user(
                    org, fields.id, fields.user_name, fields.external_id, fields.active is not False, self._dump(resource), expected
                )
            else:
                row = self.store.update_group(
                    org, fields.id, fields.display_name, fields.external_id, self._dump(resource), self._members(resource), expected
                )
        except Conflict:
            raise UniquenessException(detail=f"userName {fields.user_name!r} is taken") from None
        except LookupError as exc:
            raise InvalidValueException(detail=f"no member with id {exc.args[0]!r} in this directory") from None
        except ValueError:
            raise PreconditionFailedException() from None
        if row is None:
            raise NotFoundException(detail=f"{resource_type.name} {fields.id!r} not found")
        return self.get(resource_type, fields.id)

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        delete = self.store.delete_user if resource_type.name == "User" else self.store.delete_group
        try:
            deleted = delete(self._org(), resource_id, _expected(expected_version))
        except ValueError:
            raise PreconditionFailedException() from None
        if not deleted:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")


class ScimApplication(BaseApplication):
    """scim2-server's protocol over `SqlStorage`; the caller is authenticated before `serve`."""

    def __init__(self, store: DirectoryStore):
        super().__init__(provider())
        self.handler = ScimHandler(self.service, SqlStorage(store, self.provider))

    def serve(self, org: str | None, request: ScimRequest) -> ScimResponse:
        """Serve a request for `org` (None: only the unauthenticated service provider configuration)."""
        token = _org.set(org or "")
        try:
            try:
                if org is None and self.needs_auth(request):
                    from scim2_models import UnauthorizedException

                    raise UnauthorizedException(detail="A SCIM token of the organisation is required (Authorization: Bearer scim_...).")
                response = self.handler.handle(request)
            except Exception as exception:
                response = self.handle_exception(request, exception)
            return self.finalize_response(request, response)
        finally:
            _org.reset(token)


def request_of(method: str, base_url: str, path: str, query: str, headers: list[tuple[bytes, bytes]], body: bytes) -> ScimRequest:
    """A scim2-server request from an ASGI request under /scim/v2."""
    return ScimRequest(
        method=method,
        base_url=base_url,
        path=BaseApplication.split_path(path[len("/scim") :]),
        query=dict(parse_qsl(query, keep_blank_values=True)),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k != b"authorization"],
        body=body,
    )


def response_parts(response: ScimResponse) -> tuple[int, asgi.Headers, bytes]:
    body = b"" if response.body is None else json.dumps(response.body).encode()
    headers = [
        (k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items() if k.lower() != "content-length"
    ]
    return int(response.status), [*headers, (b"content-length", str(len(body)).encode())], body


def unauthorized(message: str) -> tuple[int, asgi.Headers, bytes]:
    body = json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401", "detail": message}).encode()
    return (
        int(HTTPStatus.UNAUTHORIZED),
        [
            (b"content-type", b"application/scim+json"),
            (b"www-authenticate", b'Bearer realm="scim"'),
            (b"content-length", str(len(body)).encode()),
        ],
        body,
    )


# -- the company middleware's hook ------------------------------------------------------------
class InThread(Protocol):
    """Runs blocking work in a worker thread (the company middleware's bounded pool)."""

    def __call__(self, fn: Callable[..., T], /, *args: Any) -> Awaitable[T]: ...


async def serve(service: CompanyService, in_thread: InThread, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
    """Answer one ASGI request under /scim/v2 for `service` (a CompanyService); blocking work runs
    through `in_thread`, never on the event loop."""
    headers = list(scope.get("headers") or [])
    try:
        body = await asgi.read_body(receive, MAX_BODY)
    except asgi.BodyTooLarge:
        out = json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "413",
                "detail": f"The request body is larger than {MAX_BODY} bytes.",
            }
        ).encode()
        return await asgi.send_response(send, 413, out, headers=[(b"content-type", b"application/scim+json")])
    if body is None:
        return None  # the client went away
    authorization = dict(headers).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.strip().partition(" ")
    method, path = scope["method"], scope.get("path", "")
    query = (scope.get("query_string") or b"").decode("latin-1")
    host = dict(headers).get(b"host", b"").decode("latin-1") or "{}:{}".format(*(scope.get("server") or ("127.0.0.1", 80)))
    public = service.config.browser.public_url if service.config.browser and service.config.browser.public_url else None
    base_url = (public.rstrip("/") if public else f"{scope.get('scheme', 'http')}://{host}") + PREFIX
    request = request_of(method, base_url, path, query, headers, body)

    def decide() -> tuple[ScimTokenRecord | None, tuple[int, asgi.Headers, bytes]]:
        record = service.directory_store.check_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if record is None and token.strip():
            return None, unauthorized("The SCIM token is unknown or revoked.")
        if record is not None:
            service.touch_scim_token(record.token_id)
        response = service.scim_application().serve(record.org if record else None, request)
        result = response_parts(response)
        if record is not None and method in ("POST", "PUT", "PATCH", "DELETE"):
            service.record_scim(record, method, request.path, result[0])
        return record, result

    _, (status, out_headers, out) = await in_thread(decide)
    await send({"type": "http.response.start", "status": status, "headers": out_headers})
    await send({"type": "http.response.body", "body": out})
