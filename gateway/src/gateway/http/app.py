"""The app factory: settings -> services -> middlewares, routes and the background retention task."""

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from aiohttp import web

from .. import telemetry
from ..searches import keep_purging
from ..services import Services
from ..settings import Settings, load_settings
from .context import SERVICES
from .forms import MAX_FIELD_BYTES
from .middleware import chain
from .routes import ROUTES

log = logging.getLogger("gateway")
KEEPALIVE_S = 15  # an idle connection is closed after this (aiohttp's default is 75 s)


def create_app(settings: Settings | None = None) -> web.Application:
    """The gateway as an aiohttp app; nothing is connected until it starts (see `run_services`)."""
    settings = settings or load_settings()
    telemetry.configure_logging(settings.log_level)
    if settings.web_dir and settings.web_root is None:
        log.warning(
            "GATEWAY_WEB_DIR is not a directory: no web app at /", extra={"web_dir": settings.web_dir}
        )
    middlewares = chain(settings.origins, settings.hsts_max_age_s)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_FIELD_BYTES)
    app[SERVICES] = Services.from_settings(settings)
    app.add_routes(ROUTES)
    app.cleanup_ctx.append(run_services)
    return app


async def run_services(app: web.Application) -> AsyncIterator[None]:
    """While the app serves: the database and the ai-server client open, and the retention purge running."""
    services = app[SERVICES]
    await services.start()
    settings = services.settings
    purging = asyncio.create_task(
        keep_purging(
            services.archive,
            settings.retention_days,
            settings.purge_interval_s,
            settings.photo_days,
        )
    )
    try:
        yield
    finally:
        purging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await purging
        await services.close()


def serve(settings: Settings | None = None) -> None:
    """The gateway on its port. Refuses (SettingsError) without the ai-server's shared secret; whatever it
    writes (database, photos) is readable by this user only."""
    settings = settings or load_settings()
    settings.upstream_secret()
    os.umask(0o077)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        keepalive_timeout=KEEPALIVE_S,
    )
