"""The `infinstor://HOST[:PORT][/PATH]` tracking URI: MLflow's REST client over HTTPS to HOST.

Credentials are not in the URI or the environment: the request header provider adds the signed-in
user's bearer token (from the token store, renewed when needed) to requests bound for HOST.
Plain HTTP is used only for loopback hosts with $INFINSTOR_INSECURE_LOOPBACK=1 (tests).

Registered for the tracking store, the model registry store and, because MLflow only resolves
`mlflow-artifacts:` URIs against http(s) tracking URIs, a thin `mlflow-artifacts` repository that
translates an `infinstor://` tracking URI first and otherwise is MLflow's own.
"""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
from mlflow.utils.rest_utils import MlflowHostCreds

from ..credentials.urls import SCHEME, service_http_url
from ..errors import InfinStorError


def http_url(store_uri: str) -> str:
    try:
        return service_http_url(store_uri)
    except InfinStorError as exc:
        raise MlflowException(f"Invalid InfinStor tracking URI {store_uri!r}: {exc.message}") from None


def _host_creds_factory(store_uri: str):
    base = http_url(store_uri)

    def get_host_creds() -> MlflowHostCreds:
        return MlflowHostCreds(base)

    return get_host_creds


def infinstor_tracking_store(store_uri: str, artifact_uri: str | None = None, **_):
    from mlflow.store.tracking.rest_store import RestStore

    return RestStore(_host_creds_factory(store_uri))


def infinstor_registry_store(store_uri: str, tracking_uri: str | None = None, **_):
    from mlflow.store.model_registry.rest_store import RestStore

    return RestStore(_host_creds_factory(store_uri))


def _translate(uri: str | None) -> str | None:
    if uri and uri.lower().startswith(SCHEME + ":"):
        return http_url(uri)
    return uri


class InfinStorAwareMlflowArtifactsRepository(MlflowArtifactsRepository):
    """MLflow's `mlflow-artifacts:` repository, which also accepts an `infinstor://` tracking URI."""

    def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        if tracking_uri is None:
            from mlflow.tracking._tracking_service.utils import get_tracking_uri

            tracking_uri = get_tracking_uri()
        super().__init__(artifact_uri, tracking_uri=_translate(tracking_uri), registry_uri=_translate(registry_uri))

    @classmethod
    def resolve_uri(cls, artifact_uri, tracking_uri):
        return super().resolve_uri(artifact_uri, _translate(tracking_uri))
