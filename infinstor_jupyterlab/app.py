"""The jupyter_server extension: configuration (traitlets), start-up and shut-down."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Int, List, Type, Unicode, default

from . import __version__
from .context import InfinStorContext
from .jobs.manager import JobManager
from .jobs.store import JobStore
from .jobs.targets import InlineTarget, JobTarget
from .projects.service import ProjectService
from .mlflow_plugin.run_context import ROOT_ENV, USER_ENV
from .paths import infinstor_data_dir
from .server.routes import build_handlers
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
        help="Where the embedded tracking service keeps its store and artifacts "
        "(default: <Jupyter data dir>/infinstor/embedded).",
    ).tag(config=True)

    embedded_port = Int(
        0, help="Loopback port of the embedded tracking service (0: a free port)."
    ).tag(config=True)

    embedded_startup_timeout = Float(
        120.0, help="Seconds to wait for the embedded tracking service to answer after starting."
    ).tag(config=True)

    configure_kernels = Bool(
        True,
        help="Point kernels and terminals started by this server at the tracking service "
        "(MLFLOW_TRACKING_URI plus the path of their credentials, never the credentials).",
    ).tag(config=True)

    job_target_classes = List(
        Type(klass=JobTarget),
        default_value=[InlineTarget],
        help="Where jobs can run: JobTarget subclasses (import strings allowed), each configured "
        "under its own class name, e.g. c.InlineTarget.max_parallel = 2.",
    ).tag(config=True)

    jobs_dir = Unicode(
        "", help="Where jobs keep their store, projects and logs (default: <InfinStor data dir>/jobs)."
    ).tag(config=True)

    def initialize_settings(self):
        tracking = self._make_tracking_backend()
        root_dir = Path(self.serverapp.root_dir).resolve()
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
        self.context = InfinStorContext(
            tracking=tracking, jobs=jobs, projects=ProjectService(root_dir), version=__version__
        )
        self.settings["infinstor"] = self.context
        if self.configure_kernels:
            # Kernels and terminals inherit the server's environment (jupyter_server adds
            # JPY_SESSION_NAME per kernel), so this reaches every one started from now on.
            os.environ.update(tracking.kernel_environment())
            os.environ[ROOT_ENV] = str(Path(self.serverapp.root_dir).resolve())
            os.environ[USER_ENV] = InfinStorContext.local_username()
        self.serverapp.event_logger.add_listener(
            schema_id=KERNEL_ACTIONS_SCHEMA, listener=self._on_kernel_action
        )
        self.log.info(
            "InfinStor %s: tracking %s (%s)", __version__, tracking.mode, tracking.uri
        )

    def _make_tracking_backend(self) -> TrackingBackend:
        if self.tracking_uri:
            return RemoteTrackingServer(self.tracking_uri)
        data_dir = Path(self.embedded_data_dir or infinstor_data_dir() / "embedded")
        return EmbeddedTrackingServer(
            data_dir, port=self.embedded_port, startup_timeout=self.embedded_startup_timeout
        )

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
        await self.context.jobs.shutdown()
        await self.context.tracking.stop()
