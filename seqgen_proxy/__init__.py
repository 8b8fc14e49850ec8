"""seqgen-proxy: relays public requests to servers or proxies, with failover (DESIGN section 5).

Layers: ``config`` (command line -> ProxyConfig), pure logic without zmq
(``backends`` selection and health, ``caps`` the cap on ``last``, ``inflight``
request bookkeeping, ``wire`` frame rules), ``sockets`` (every socket is made
there) and ``relay`` (the one-thread I/O loop).
"""
