"""The route table: every path the gateway answers, its method and its handler, in one list. The web app's
catch-all comes last; each handler module says what its routes do."""

from aiohttp import web

from . import keys, match, operations, persons, searches, webapp

PERSON = r"{person_id:[A-Za-z0-9_-]{1,64}}"
FACE = r"{face_id:\d{1,12}}"
SEARCH = r"{search_id:[0-9a-f]{32}}"
KEY = r"{key_id:[0-9a-f]{1,32}}"

ROUTES = [
    web.post("/v1/match", match.match),
    web.post("/match", match.match),  # the paper's path
    web.get("/v1/searches", searches.list_searches),
    web.get(f"/v1/searches/{SEARCH}", searches.get_search),
    web.delete(f"/v1/searches/{SEARCH}", searches.delete_search),
    web.get(f"/v1/searches/{SEARCH}/image", searches.search_image),
    web.get(f"/v1/searches/{SEARCH}/heatmap", searches.search_heatmap),
    web.post(f"/v1/searches/{SEARCH}/feedback", searches.feedback),
    web.post("/v1/persons", persons.create_person),
    web.post(f"/v1/persons/{PERSON}/faces", persons.add_faces),
    web.get("/v1/persons", persons.list_persons),
    web.get(f"/v1/persons/{PERSON}", persons.get_person),
    web.delete(f"/v1/persons/{PERSON}", persons.delete_person),
    web.delete(f"/v1/persons/{PERSON}/faces/{FACE}", persons.delete_face),
    web.get(f"/v1/persons/{PERSON}/faces/{FACE}/thumbnail", persons.thumbnail),
    web.get("/v1/admin/failures", operations.failures),
    web.get("/v1/admin/keys", keys.list_keys),
    web.post("/v1/admin/keys", keys.create_key),
    web.delete(f"/v1/admin/keys/{KEY}", keys.revoke_key),
    web.get("/healthz", operations.healthz),
    web.get("/readyz", operations.readyz),
    web.get("/metrics", operations.metrics),
    web.get("/openapi.json", operations.openapi),
    web.get("/docs", operations.docs),
    web.get(r"/{tail:(?!v1/|v1$).*}", webapp.static),  # last: anything else outside /v1 is the web app
]
