"""The jupyter_server extension: configuration (traitlets), start-up and shut-down."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Type, Unicode, default

from .. import __version__
from ..credentials.manager import CredentialManager
from ..credentials.oidc import AUDIENCE_ENV, CLIENT_ID_ENV, DEFAULT_SCOPES, ISSUER_ENV, SCOPES_ENV, OIDCSettings, split_scopes
from ..credentials.tokens import TokenStore
from ..credentials.urls import service_http_url
from ..errors import InfinStorError
from ..jobs.manager import JobManager
from ..jobs.store import JobStore
from ..jobs.targets import InlineTarget, JobTarget
from ..mlflow_plugin.run_context import ROOT_ENV, USER_ENV
from ..paths import infinstor_data_dir
from ..projects.service import ProjectService
from .context import InfinStorContext
from .handlers.proxy import SETTINGS_KEY as PROXY_SETTINGS_KEY
from .handlers.proxy import proxy_prefix
from .handlers.routes import build_handlers
from .proxy.forwarder import MlflowProxy, ProxySettings
from .signin import SignInService
from .tracking import EmbeddedTrackingServer, RemoteTrackingServer, TrackingBackend

TRACKING_URI_ENV = "INFINSTOR_TRACKING_URI"
KERNEL_ACTIONS_SCHEMA = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"


class InfinStor(ExtensionApp):
    """InfinStor: MLflow tracking, sign-in and jobs for JupyterLab."""

    name = "infinstor_jupyterlab"
    load_other_extensions = True

    tracking_uri = Unicode(
        help=(
            "URL of the MLflow tracking service to use (e.g. https://mlflow.example.com). "
            f"Empty (the default, unless ${TRACKING_URI_ENV} is set) starts a private local "
            "tracking service on first need."
        ),
    ).tag(config=True)

    @default("tracking_uri")
    def _default_tracking_uri(self):
        return os.environ.get(TRACKING_URI_ENV, "").strip()

    embedded_data_dir = Unicode(
        "",
        help="Where the embedded tracking service keeps its store and artifacts (default: <Jupyter data dir>/infinstor/embedded).",
    ).tag(config=True)

    embedded_port = Int(0, help="Loopback port of the embedded tracking service (0: a free port).").tag(config=True)

    embedded_startup_timeout = Float(120.0, help="Seconds to wait for the embedded tracking service to answer after starting.").tag(
        config=True
    )

    proxy_connect_timeout = Float(10.0, help="MLflow proxy: seconds to connect to the tracking service.").tag(config=True)

    proxy_request_timeout = Float(
        120.0,
        help="MLflow proxy: seconds the tracking service may take to start answering a request once it has been sent.",
    ).tag(config=True)

    proxy_idle_timeout = Float(
        60.0,
        help="MLflow proxy: seconds a request or response body may stall (no bytes either way) before the transfer is aborted.",
    ).tag(config=True)

    proxy_max_clients = Int(
        64,
        help="MLflow proxy: concurrent requests to the tracking service; more wait (for at most proxy_connect_timeout).",
    ).tag(config=True)

    proxy_replay_limit = Int(
        10 * 1024 * 1024,
        help="MLflow proxy: request bodies up to this many bytes are buffered so they can be sent "
        "again after the tracking service asked for fresh credentials; larger ones are streamed.",
    ).tag(config=True)

    proxy_max_upload_size = Int(0, help="MLflow proxy: largest request body in bytes (0: no limit of the proxy's own).").tag(config=True)

    oidc_issuer = Unicode(help=f"Issuer URL of the OpenID Connect identity provider users sign in with (default ${ISSUER_ENV}).").tag(
        config=True
    )

    @default("oidc_issuer")
    def _default_oidc_issuer(self):
        return os.environ.get(ISSUER_ENV, "").strip()

    oidc_client_id = Unicode(
        help=f"OAuth client id of the lab at the identity provider: a public client with "
        f"authorization code + PKCE, refresh tokens and device code (default ${CLIENT_ID_ENV})."
    ).tag(config=True)

    @default("oidc_client_id")
    def _default_oidc_client_id(self):
        return os.environ.get(CLIENT_ID_ENV, "").strip()

    oidc_scopes = List(Unicode(), help=f"Scopes to ask for (default ${SCOPES_ENV}, else {' '.join(DEFAULT_SCOPES)}).").tag(config=True)

    @default("oidc_scopes")
    def _default_oidc_scopes(self):
        return list(split_scopes(os.environ.get(SCOPES_ENV)) or DEFAULT_SCOPES)

    oidc_audience = Unicode(
        help=f"Audience of the access tokens: sent as the RFC 8707 `resource` parameter "
        f"(default ${AUDIENCE_ENV}; empty: the identity provider's default)."
    ).tag(config=True)

    @default("oidc_audience")
    def _default_oidc_audience(self):
        return os.environ.get(AUDIENCE_ENV, "").strip()

    oidc_redirect_uri = Unicode(
        "",
        help="The sign-in callback URL the identity provider redirects to (default: derived from the "
        "request, <lab origin><base_url>infinstor/api/auth/callback). Set it behind a reverse proxy.",
    ).tag(config=True)

    token_store_path = Unicode(
        "",
        help="The per-user token store shared with kernels and the `infinstor` CLI (default "
        "$INFINSTOR_TOKEN_STORE, else <InfinStor data dir>/credentials/tokens.json).",
    ).tag(config=True)

    token_refresh_margin = Float(60.0, help="Renew an access token when it has fewer than this many seconds left.").tag(config=True)

    configure_kernels = Bool(
        True,
        help="Point kernels and terminals started by this server at the tracking service "
        "(MLFLOW_TRACKING_URI plus the path of their credentials, never the credentials).",
    ).tag(config=True)

    job_target_classes = List(
        Type(klass=JobTarget),
        default_value=[InlineTarget, "infinstor_jupyterlab.jobs.targets.ec2.EC2Target"],
        help="Where jobs can run: JobTarget subclasses (import strings allowed), each configured "
        "under its own class name, e.g. c.InlineTarget.max_parallel = 2.",
    ).tag(config=True)

    jobs_dir = Unicode("", help="Where jobs keep their store, projects and logs (default: <InfinStor data dir>/jobs).").tag(config=True)

    def initialize_settings(self):
        serverapp = self.serverapp
        assert serverapp is not None and serverapp.event_logger is not None  # set before extensions load
        tracking = self._make_tracking_backend()
        root_dir = Path(serverapp.root_dir).resolve()
        jobs_dir = Path(self.jobs_dir) if self.jobs_dir else infinstor_data_dir() / "jobs"
        targets = {}
        for cls in self.job_target_classes:
            target = cls(parent=self)
            targets[target.name] = target
        jobs = JobManager(
            store=JobStore(jobs_dir / "jobs.db"),
            targets=targets,
            tracking=tracking,
            root_dir=root_dir,
            jobs_dir=jobs_dir,
            user=InfinStorContext.local_username(),
        )
        self.context = InfinStorContext(tracking=tracking, jobs=jobs, projects=ProjectService(root_dir), version=__version__)
        credentials = getattr(tracking, "credentials", None)
        if credentials is not None:
            self.context.auth = SignInService(credentials, credentials.settings, template=self._oidc_settings())
        if self.oidc_redirect_uri:
            self.settings["infinstor_oidc_redirect_uri"] = self.oidc_redirect_uri
        self.settings["infinstor"] = self.context
        self.settings[PROXY_SETTINGS_KEY] = MlflowProxy(
            tracking,
            ProxySettings(
                connect_timeout=self.proxy_connect_timeout,
                request_timeout=self.proxy_request_timeout,
                idle_timeout=self.proxy_idle_timeout,
                max_clients=self.proxy_max_clients,
                replay_limit=self.proxy_replay_limit,
                max_upload_size=self.proxy_max_upload_size,
            ),
            proxy_prefix(serverapp.base_url),
        )
        if self.configure_kernels:
            # Kernels and terminals inherit the server's environment (jupyter_server adds
            # JPY_SESSION_NAME per kernel), so this reaches every one started from now on.
            os.environ.update(tracking.kernel_environment())
            os.environ[ROOT_ENV] = str(Path(serverapp.root_dir).resolve())
            os.environ[USER_ENV] = InfinStorContext.local_username()
        serverapp.event_logger.add_listener(schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action)
        self.log.info("InfinStor %s: tracking %s (%s)", __version__, tracking.mode, tracking.uri)

    def _make_tracking_backend(self) -> TrackingBackend:
        if self.tracking_uri:
            return self._make_remote_backend(self.tracking_uri)
        data_dir = Path(self.embedded_data_dir or infinstor_data_dir() / "embedded")
        return EmbeddedTrackingServer(data_dir, port=self.embedded_port, startup_timeout=self.embedded_startup_timeout)

    def _oidc_settings(self) -> OIDCSettings:
        return OIDCSettings(
            issuer=self.oidc_issuer.strip(),
            client_id=self.oidc_client_id.strip(),
            scopes=tuple(self.oidc_scopes) or DEFAULT_SCOPES,
            audience=self.oidc_audience.strip(),
        )

    def _make_remote_backend(self, uri: str) -> RemoteTrackingServer:
        settings = self._oidc_settings()
        try:
            http_uri = service_http_url(uri) if uri.lower().startswith("infinstor:") else uri
            credentials = CredentialManager(
                http_uri,
                store=TokenStore(self.token_store_path or None),
                settings=settings,
                refresh_margin=self.token_refresh_margin,
            )
        except InfinStorError as exc:
            # e.g. plain http to a remote host: talk to it, but never send it credentials.
            self.log.warning("InfinStor: sign-in disabled for %s: %s", uri, exc.message)
            return RemoteTrackingServer(uri)
        if settings.issuer and not settings.client_id:
            self.log.warning("InfinStor: c.InfinStor.oidc_issuer is set but oidc_client_id is not; sign-in disabled")
        return RemoteTrackingServer(http_uri, credentials=credentials)

    async def _on_kernel_action(self, logger, schema_id, data):
        # A kernel starting is a first need: warm the embedded service so its first
        # `mlflow.log_*` does not wait for it.
        if data.get("action") in ("start", "restart"):
            asyncio.ensure_future(self.context.tracking.status())

    def initialize_handlers(self):
        self.handlers.extend(build_handlers())

    async def _start_jupyter_server_extension(self, serverapp):
        # Jobs that ran across a restart are followed again (or marked FAILED with the reason).
        try:
            await self.context.jobs.recover()
        except Exception:
            self.log.exception("InfinStor: recovering jobs failed")

    async def stop_extension(self):
        proxy = self.settings.get(PROXY_SETTINGS_KEY)
        if proxy is not None:
            await proxy.close()
        await self.context.jobs.shutdown()
        await self.context.tracking.stop()
