"""Locust's side of bench_transport: FastHttpUser posting the same profile-built MES payloads.

Run by the benchmark as ``locust -f benchmarks/locust_mes.py --headless ...`` in its own process (gevent
must not share a process with the twin's asyncio loop). Payloads come from TWIN_BENCH_PAYLOADS (JSON file
written by the benchmark: a list of [path, body] pairs).
"""

import itertools
import json
import os

from locust import FastHttpUser, constant, task

with open(os.environ["TWIN_BENCH_PAYLOADS"], encoding="utf-8") as fh:
    PAYLOADS = [(path, json.dumps(body)) for path, body in json.load(fh)]


class MesHost(FastHttpUser):
    wait_time = constant(0)
    _cycle = itertools.cycle(PAYLOADS)

    @task
    def post(self) -> None:
        path, body = next(self._cycle)
        self.client.post(
            path, data=body, headers={"Content-Type": "application/json", "Authorization": "Bearer bench"}, name=path
        )
