"""A stand-in Asterisk ARI for the fuzz run: answers originates as a real one does (200, Channel),
and a channel look-up as for a channel already gone (404).

python .ci/fake_ari.py PORT
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlparse(self.path)
        if url.path != "/ari/channels":
            return self._answer(404, {"message": "Resource not found"})
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        channel_id = query.get("channelId", "1700000000.1")
        self._answer(200, {"id": channel_id, "name": f"{query.get('endpoint')}-00000000;1", "state": "Down"})

    def do_GET(self):  # noqa: N802
        if urlparse(self.path).path.startswith("/ari/channels/"):
            return self._answer(404, {"message": "Channel not found"})
        self._answer(404, {"message": "Resource not found"})

    def _answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
