"""seqgen-proxy: relays public requests to servers or proxies, with failover (docs/proxy.md).

Layers: ``config`` (command line -> ProxyConfig), pure logic without zmq
(``backends`` selection and health, ``caps`` the ``last`` it forwards, ``inflight``
request bookkeeping, ``wire`` reply rules), ``links`` (the sockets and their
context) and ``relay`` (the one-thread I/O loop).
"""
