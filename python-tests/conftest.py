"""pytest harness for the redis-lottery module (black-box, via redis-server).

Environment:
  LOTTERY_MODULE  path to liblottery.so (default <repo>/target/release/liblottery.so)
  REDIS_SERVER    redis-server binary (default: redis-server on PATH)

Every server a test starts is checked after the test: if it died (a module panic kills
redis-server) the test fails loudly with the server log tail.
"""
import os

import pytest

import lottery_helpers as H


@pytest.fixture(scope="session", autouse=True)
def _module_present():
    if not os.path.isfile(H.MODULE_PATH):
        pytest.fail(f"lottery module not found at {H.MODULE_PATH!r}: build it with "
                    f"`cargo build --release` or set LOTTERY_MODULE", pytrace=False)


@pytest.fixture
def server_factory():
    """Start extra servers: server_factory(**RedisServer kwargs). Checked and cleaned up."""
    started = []

    def make(**kw):
        s = H.RedisServer(**kw)
        started.append(s)
        return s

    yield make
    problems = []
    for s in started:
        try:
            s.check_alive()
        except AssertionError as e:
            problems.append(str(e))
        crit = s.critical_log_lines()
        if crit:
            problems.append(f"server on port {s.port} logged critical errors "
                            f"(e.g. a replica refusing the master's stream):\n" + "\n".join(crit[:5]))
    for s in started:
        s.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(server_factory):
    """A fresh redis-server with the module loaded (debug-clock yes)."""
    return server_factory()


@pytest.fixture
def r(server):
    return server.client()


@pytest.fixture
def raw(server):
    c = server.raw()
    yield c
    c.close()


@pytest.fixture
def master_replica(server_factory):
    master = server_factory()
    replica = server_factory(replicaof=("127.0.0.1", master.port))
    H.wait_link_up(replica.client())
    return master, replica
