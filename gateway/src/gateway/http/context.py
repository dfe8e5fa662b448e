"""What a handler and the middlewares read from a request: the gateway's services, and what the middlewares
and authorize() store on the request (typed keys, so a misspelt name is an error, not a silent None)."""

from aiohttp import web

from ..errors import ApiError
from ..services import Services

SERVICES = web.AppKey("services", Services)
REQUEST_ID = web.RequestKey("request_id", str)  # set first, by the request_id middleware
STARTED = web.RequestKey("started", float)  # time.perf_counter() when the request arrived
KEY_ID = web.RequestKey("key_id", str)  # the caller's API key id, once authorized
ERROR = web.RequestKey("error", ApiError)  # the refusal the client got, for the failure log


def services(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def request_id(request: web.Request) -> str:
    return request[REQUEST_ID]
