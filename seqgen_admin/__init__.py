"""``seqgen-admin``: the admin and status HTTP process for one seqgen server.

It knows its server only through the server's private control socket
(``seqgen_common.control``); it never imports ``seqgen_server``. It talks to the
other servers' admins (``--peer``) over HTTP, never to their servers.

Modules, one job each:

- ``config``: command line (and ``SEQGEN_ADMIN_TOKEN``) -> ``AdminConfig``
- ``control_client``: the asyncio control client (DEALER, request ids, timeouts)
- ``models``: the typed HTTP request/response models of the OpenAPI schema
- ``auth``: the bearer token check for writes
- ``api``: the JSON endpoints
- ``metrics``: Prometheus exposition (the server's counters, the cluster, the admin's HTTP metrics)
- ``plane``: the operator's plane of this admin (peers, witness record, own server), started
  and stopped with the app
- ``peers``: HTTP calls to the other servers' admins (polling, reading them for recovery)
- ``witness``: the durable witness record (SQLite) of what the peers issued
- ``cluster``: the conflict rule of the cluster view (pure)
- ``margin``: the recovery rule: floors and margins (pure)
- ``recover``: the recovery procedure (``POST /recover``)
- ``backup``: streaming a server's snapshot (``GET /backup``)
- ``app``: the app factory ``create_app(config)`` and ``run(config)`` (uvicorn)
- ``static/index.html``: the human status page served at ``/``
"""
