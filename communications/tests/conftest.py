# The relay's RabbitMQ fixtures (a unique exchange and queue per test, a TCP proxy for faults).
from .rabbit import exchange, proxy, queue  # noqa: F401
