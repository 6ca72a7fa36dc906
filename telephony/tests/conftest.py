"""A fake Asterisk ARI: a real HTTP server on 127.0.0.1 answering as shared/ARI-NOTES.md says."""

import json
import socket
import threading

import pytest
from werkzeug import Request, Response

from telephony import ari

USER, PASSWORD = "crm", "s3cret"


class FakeAri:
    """Originates answer like Asterisk: 200 with a Channel, 409 for a live channelId, 401 for a bad
    password, 400 without an endpoint, 500 "Allocation failed" for an unknown technology."""

    def __init__(self, server):
        self.server = server
        self.live_channels: set[str] = set()
        server.expect_request("/ari/channels", method="POST").respond_with_handler(self.originate)

    def originate(self, request: Request) -> Response:
        if request.authorization is None or (request.authorization.username, request.authorization.password) != (
            USER,
            PASSWORD,
        ):
            return self._json(401, {"message": "Authentication required"})
        params = {**request.args.to_dict(), **(request.get_json(silent=True) or {})}
        endpoint = params.get("endpoint")
        if not endpoint:
            return self._json(400, {"message": "Endpoint must be specified"})
        if not endpoint.startswith(("PJSIP/", "SIP/", "Local/")):
            return self._json(500, {"error": "Allocation failed"})
        channel_id = params.get("channelId", "1700000000.1")
        if channel_id in self.live_channels:
            return self._json(409, {"message": "Channel with given unique ID already exists"})
        self.live_channels.add(channel_id)
        return self._json(
            200,
            {
                "id": channel_id,
                "name": f"{endpoint}-00000000;1",
                "state": "Down",
                "protocol_id": "",
                "caller": {"name": params.get("callerId", ""), "number": ""},
                "connected": {"name": "", "number": ""},
                "accountcode": "",
                "dialplan": {"context": params.get("context"), "exten": params.get("extension"), "priority": 1},
                "creationtime": "2026-11-27T07:15:21.459+0000",
                "language": "en",
            },
        )

    @staticmethod
    def _json(code: int, body: dict) -> Response:
        return Response(json.dumps(body), status=code, content_type="application/json")

    @property
    def originates(self) -> list:
        return [request for request, _ in self.server.log if request.path == "/ari/channels"]


@pytest.fixture(autouse=True)
def fresh_breaker():
    ari.reset_breaker()
    yield
    ari.reset_breaker()


@pytest.fixture
def telephony_settings(settings):
    settings.ASTERISK_ARI_USERNAME = USER
    settings.ASTERISK_ARI_PASSWORD = PASSWORD
    settings.ASTERISK_CONTEXT = "from-crm"
    settings.ASTERISK_ENDPOINT_TEMPLATE = "PJSIP/{extension}"
    settings.ASTERISK_CALLER_ID = "CRM"
    settings.ASTERISK_CONNECT_TIMEOUT = 0.5
    settings.ASTERISK_READ_TIMEOUT = 0.5
    settings.ASTERISK_BREAKER_FAILURES = 3
    settings.ASTERISK_BREAKER_COOLDOWN = 60
    return settings


@pytest.fixture
def fake_ari(httpserver, telephony_settings):
    telephony_settings.ASTERISK_ARI_URL = httpserver.url_for("/ari")
    return FakeAri(httpserver)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BlackHole:
    """Accepts TCP connections on 127.0.0.1 and never answers: a hung Asterisk."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self):
        self.sock.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def hung_ari(telephony_settings):
    hole = BlackHole()
    telephony_settings.ASTERISK_ARI_URL = f"http://127.0.0.1:{hole.port}/ari"
    yield hole
    hole.close()
