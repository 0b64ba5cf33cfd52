"""The harness that the tests and the benchmarks share: real Tandem servers on loopback,
the databases under them, and clients for their streams.

- :mod:`harness.serverprocess`: one server process group, started and always stopped;
- :mod:`harness.servers`: gunicorn and hypercorn with the shipped configs, pools of them;
- :mod:`harness.nginx`: the split plane, nginx with ``deploy/nginx.conf`` in front;
- :mod:`harness.databases`: migrated SQLite files, PostgreSQL databases, Redis prefixes;
- :mod:`harness.streams`: stream clients for correctness (httpx, websockets);
- :mod:`harness.loadclients`: stream clients for load, in client processes;
- :mod:`harness.wire`: what both kinds of client agree on (kinds, URLs, events);
- :mod:`harness.waiting`: ``eventually``, a wait on a condition with a timeout;
- :mod:`harness.environment`, :mod:`harness.net`, :mod:`harness.processes`,
  :mod:`harness.errors`: what those are built from.

Pytest fixtures over it live in ``tests/servers.py``; measurement (RSS, wrk, results)
stays in ``benchmarks/``. Modules import only what they need, so that a load-client
process loads no HTTP library.
"""
