"""The production settings plus the benchmark's bare baseline views (bench/urls.py).

Only `bench/api_throughput.py` uses this module; the product's URLs never include the baselines.
"""

from communications_project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
