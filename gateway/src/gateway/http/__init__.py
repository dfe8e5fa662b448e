"""The HTTP side of the gateway (aiohttp): the app factory (app.py), one middleware per concern
(middleware.py), and thin handlers in a route table (routes/). Handlers reach everything else through
`context.services(request)`."""
