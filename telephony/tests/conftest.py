"""A fake Asterisk ARI: a real HTTP server on 127.0.0.1 answering as shared/ARI-NOTES.md says."""

import base64
import json
import re
import socket
import threading
from contextlib import suppress
from pathlib import Path

import pytest
from websockets.sync.server import serve
from werkzeug import Request, Response

from telephony import ari

USER, PASSWORD = "crm", "s3cret"
DATA = Path(__file__).parent / "data"


def ari_json(name: str) -> dict:
    """One of the JSON blocks of shared/ARI-NOTES.md, as a real Asterisk sent it."""
    return json.loads((DATA / name).read_text())


ORIGINATED = ari_json("ari_originate_200.json")


class FakeAri:
    """Originates answer like Asterisk: 200 with a Channel, 409 for a live channelId, 401 for a bad
    password, 400 without an endpoint, 500 "Allocation failed" for an unknown technology."""

    def __init__(self, server):
        self.server = server
        self.live_channels: set[str] = set()
        self.up_channels: set[str] = set()
        self.channel_failures = 0  # this many channel look-ups answer 500 first
        server.expect_request("/ari/channels", method="POST").respond_with_handler(self.originate)
        server.expect_request(re.compile(r"^/ari/channels/[^/]+$"), method="GET").respond_with_handler(self.channel)

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

    def channel(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._json(401, {"message": "Authentication required"})
        channel_id = request.path.rsplit("/", 1)[1]
        if self.channel_failures > 0:
            self.channel_failures -= 1
            return self._json(500, {"error": "Internal Server Error"})
        if channel_id not in self.live_channels:
            return self._json(404, {"message": "Channel not found"})
        return self._json(
            200, {**ORIGINATED, "id": channel_id, "state": "Up" if channel_id in self.up_channels else "Down"}
        )

    @staticmethod
    def _authorized(request: Request) -> bool:
        auth = request.authorization
        return auth is not None and (auth.username, auth.password) == (USER, PASSWORD)

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


class StandInAriEvents:
    """ARI's event WebSocket: a real websockets server on 127.0.0.1, basic auth as ARI checks it.

    Each connection plays the next script in `scripts`: events (dicts, sent as JSON text frames),
    then "drop" (once `drop_now` is set, the TCP connection is cut, as when Asterisk dies) or
    nothing (held open until the listener leaves). `before_drop` runs just before a drop.
    """

    def __init__(self):
        self.scripts: list[list] = []
        self.requests: list[tuple[str, str | None]] = []
        self.before_drop = None
        self.released = threading.Event()
        self.drop_now = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0, process_request=self._check)
        self.port = self.server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ari/events"

    def _check(self, connection, request):
        self.requests.append((request.path, request.headers.get("Authorization")))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            response = connection.respond(401, json.dumps({"message": "Authentication required"}))
            return response
        if not request.path.startswith("/ari/events?"):
            return connection.respond(404, "Not found")
        return None

    def _handle(self, connection):
        script = self.scripts.pop(0) if self.scripts else []
        for item in script:
            if item == "drop":
                self.drop_now.wait(5)
                if self.before_drop:
                    self.before_drop()
                connection.socket.shutdown(socket.SHUT_RDWR)
                return
            connection.send(json.dumps(item))
        with suppress(Exception):
            while not self.released.is_set():
                try:
                    connection.recv(timeout=0.1)
                except TimeoutError:
                    continue

    def close(self):
        self.released.set()
        self.server.shutdown()


@pytest.fixture
def ari_events(fake_ari, telephony_settings):
    """The stand-in ARI: HTTP (fake_ari) and the event WebSocket, as one Asterisk."""
    stand_in = StandInAriEvents()
    telephony_settings.ASTERISK_ARI_EVENTS_URL = stand_in.url
    telephony_settings.ASTERISK_ARI_APP = "crm"
    yield stand_in
    stand_in.close()
