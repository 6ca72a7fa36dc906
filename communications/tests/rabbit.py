"""The machine's real RabbitMQ (127.0.0.1:5672, guest/guest) for the relay's tests.

Each test gets an exchange and a queue of its own (unique names, so parallel runs in other
worktrees do not collide), deleted afterwards. Faults go through `TcpProxy`, a proxy of the
test's own in front of the broker: cutting it never touches the machine's RabbitMQ. Without a
broker the tests skip, unless REQUIRE_RABBITMQ is set (CI), where that is a failure.
"""

import contextlib
import os
import socket
import threading
import time
import uuid

import pika
import pika.exceptions
import pytest

HOST, PORT = "127.0.0.1", 5672
URL = f"amqp://guest:guest@{HOST}:{PORT}/"


def broker_or_skip() -> None:
    try:
        pika.BlockingConnection(pika.URLParameters(URL + "?connection_attempts=1&socket_timeout=2")).close()
    except (pika.exceptions.AMQPError, OSError) as error:
        reason = f"RabbitMQ is not reachable at {HOST}:{PORT}: {type(error).__name__}"
        if os.environ.get("REQUIRE_RABBITMQ"):
            pytest.fail(f"REQUIRE_RABBITMQ is set, but {reason}")
        pytest.skip(reason)


class Queue:
    """A durable queue bound to a test's exchange with `#`: what a consumer of the events sets up."""

    def __init__(self, exchange: str):
        self.exchange = exchange
        self.name = f"{exchange}.all"
        self.connection = pika.BlockingConnection(pika.URLParameters(URL))
        self.channel = self.connection.channel()
        # The relay declares the exchange too; declaring it here first lets the queue be bound before
        # anything is published (a topic exchange drops what no queue is bound to).
        self.channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.channel.queue_declare(self.name, durable=True, arguments={"x-queue-type": "quorum"})
        self.channel.queue_bind(self.name, exchange, routing_key="#")
        self.received: list[tuple[pika.spec.Basic.Deliver, pika.BasicProperties, bytes]] = []

    def take(self, count: int, timeout: float = 60.0) -> list:
        """Messages until `count` have arrived in all (acknowledged), or the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            method, props, body = self.channel.basic_get(self.name, auto_ack=True)
            if method is None:
                self.connection.process_data_events(time_limit=0.05)
                continue
            self.received.append((method, props, body))
        return self.received

    def take_ids(self, ids: set[str], timeout: float = 60.0) -> list:
        """Messages until every one of these message ids has arrived (duplicates included), or the deadline."""
        deadline = time.monotonic() + timeout
        while not ids <= {props.message_id for _m, props, _b in self.received} and time.monotonic() < deadline:
            self.take(len(self.received) + 1, timeout=max(0.0, deadline - time.monotonic()))
        return self.received

    def close(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            self.channel.queue_delete(self.name)
            self.channel.exchange_delete(self.exchange)
            self.connection.close()


@pytest.fixture
def exchange():
    broker_or_skip()
    return f"test.events.{uuid.uuid4().hex[:12]}"


@pytest.fixture
def queue(exchange):
    bound = Queue(exchange)
    yield bound
    bound.close()


class TcpProxy:
    """127.0.0.1:<port> → the broker. `cut()` drops every connection and refuses new ones until `restore()`."""

    def __init__(self, target: tuple[str, int] = (HOST, PORT)):
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/?heartbeat=5&socket_timeout=3"
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.accepted = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()  # the broker is "down": connection refused, as good as
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def proxy():
    broker_or_skip()
    tcp = TcpProxy()
    yield tcp
    tcp.close()
