"""Slow clients (issue 39, item 16): connections that dribble their request heads are closed after the head
deadline, through a real uvicorn on 127.0.0.1 with raw sockets, while a normal request is still answered."""

from __future__ import annotations

import http.client
import socket
import time

import pytest

pytest.importorskip("fastapi", reason="ganvae explore needs the explore extra: pip install -e '.[explore]'")

from conftest import uvicorn_in_thread  # noqa: E402


def ping_app():
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict:
        return {"ok": True}

    return app


def test_dribbling_clients_are_let_go_and_others_are_served():
    with uvicorn_in_thread(ping_app(), head_seconds=1.0) as port:
        slow = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            slow.append(s)
        started = time.monotonic()
        closed = 0
        while closed < len(slow) and time.monotonic() - started < 8:
            for s in slow:
                if s.fileno() == -1:
                    continue
                try:
                    s.sendall(b"a")  # a byte now and then: uvicorn's keep-alive timer restarts on each
                    s.settimeout(0.2)
                    if s.recv(100) == b"":
                        s.close()
                        closed += 1
                except (TimeoutError, socket.timeout):
                    pass
                except OSError:  # reset by the server
                    s.close()
                    closed += 1
        assert closed == len(slow), f"{closed} of {len(slow)} dribbling connections closed"
        assert time.monotonic() - started < 8
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/ping")
        assert conn.getresponse().status == 200
