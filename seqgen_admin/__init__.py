"""``seqgen-admin``: the admin and status HTTP process for one seqgen server.

It knows its server only through the server's private control socket
(``seqgen_common.control``); it never imports ``seqgen_server``.

Modules, one job each:

- ``config``: command line (and ``SEQGEN_ADMIN_TOKEN``) -> ``AdminConfig``
- ``control_client``: the asyncio control client (DEALER, request ids, timeouts)
- ``models``: the typed HTTP request/response models of the OpenAPI schema
- ``auth``: the bearer token check for writes
- ``api``: the JSON endpoints
- ``metrics``: Prometheus exposition (the server's counters, the admin's HTTP metrics)
- ``app``: the app factory ``create_app(config)`` and ``run(config)`` (uvicorn)
- ``static/index.html``: the human status page served at ``/``
"""
