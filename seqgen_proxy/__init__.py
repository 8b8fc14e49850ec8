"""seqgen-proxy: relays public requests to servers or proxies, with failover (docs/proxy.md).

Layers: ``config`` (command line -> ProxyConfig), pure logic without zmq
(``backends`` selection and health, ``caps`` the ``last`` it forwards, ``inflight``
request bookkeeping, ``jobs`` coalescing, ``hedges``, ``shares`` the queue per name,
``wire`` error-reply rules, ``stats`` every counter), ``links`` (the sockets and their
context), ``upstream`` (the backends' side: attempts, failover, hedges, probes) and
``relay`` (the clients' side and the one-thread I/O loop); ``metrics`` serves --metrics.
"""
