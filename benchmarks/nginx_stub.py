"""A throwaway nginx on loopback that answers every POST with the MES's success envelope.

Used by the traffic benchmarks as a server that is never the bottleneck. nginx (Debian package
``nginx-light`` or ``nginx``) must be installed; ``make bench`` installs it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port};
{locations}        location / {{
            default_type application/json;
            return 200 '{{"code":0,"msg":"Success"}}';
        }}
    }}
}}
"""
LOCATION = """        location = {path} {{
            default_type application/json;
            return 200 '{body}';
        }}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _locations(answers: dict[str, str] | None) -> str:
    out = []
    for path, body in (answers or {}).items():
        if "'" in body or "$" in body or "{" in path:
            continue  # not expressible as a literal nginx return: that path gets the plain envelope
        out.append(LOCATION.format(path=path, body=body))
    return "".join(out)


@contextmanager
def nginx_stub(answers: dict[str, str] | None = None) -> Iterator[str]:
    """Start nginx on a free loopback port; yields its base URL; stops it on exit.

    ``answers`` maps a path to the JSON body answered there (every other path gets the success envelope).
    """
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx-light (or run `make bench`)")
    with tempfile.TemporaryDirectory(prefix="twin-nginx-") as d:
        port = _free_port()
        conf = Path(d) / "nginx.conf"
        conf.write_text(CONF.format(dir=d, port=port, locations=_locations(answers)))
        proc = subprocess.Popen([binary, "-c", str(conf), "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError as exc:
                    if proc.poll() is not None:
                        detail = proc.stderr.read().decode() if proc.stderr else ""
                        raise RuntimeError(f"nginx exited: {detail}") from exc
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
