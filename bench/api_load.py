"""Shared by the API benchmarks: a billingd with [api] on loopback, and a load generator.
billingd is started and stopped as tests/e2e/api_support.py does it.

The load generator is asyncio with hand-written HTTP/1.1 on keep-alive connections (the
standard library's clients cost more CPU per request than billingd does), so that on the
2-core machine the figures measure billingd rather than the client.
"""
import asyncio
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
import api_support as e2e_api  # noqa: E402
import harness  # noqa: E402

free_port = e2e_api.free_port

TOKEN = "bench" + "0123456789abcdef" * 3


def api_workspace(sim, port, extra_api="", **settings):
    ws = harness.Workspace(sim, **settings)
    ws.write_config(**settings)
    with open(ws.config_path) as f:
        config = f.read().replace('level = "warn"', 'level = "info"')
    with open(ws.config_path, "w") as f:
        f.write(config + f'\n[api]\nlisten = "127.0.0.1:{port}"\nmax_connections = 256\n'
                         f'{extra_api}')
    ws.env["BILLINGD_API_TOKENS"] = f"bench write {TOKEN}\n"
    return ws


def start(ws):
    return e2e_api.start_daemon(ws)


def stop(proc):
    return e2e_api.stop_daemon(proc)


def wait_for_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the API did not come up")


def create_request(i, prefix="bench-api", anchor="2030-01-05"):
    body = json.dumps({"customer_uid": f"{prefix}-{i}", "amount": 9900,
                       "order_name": "bench", "anchor_date": anchor}).encode()
    return (f"POST /v1/subscriptions HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def _read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status


async def _connection(port, next_request, latencies, statuses, stop_at):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop_at:
            request = next_request()
            if request is None:
                break
            started = time.perf_counter()
            writer.write(request)
            status = await _read_answer(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def load(port, connections, total=None, seconds=None, prefix="bench-api"):
    """Creates subscriptions on `connections` keep-alive connections until `total` were sent or
    `seconds` passed. Returns (answered, wall seconds, latencies, {status: count})."""
    counter = iter(range(total if total is not None else 10**12))
    latencies, statuses = [], {}
    stop_at = time.monotonic() + (seconds if seconds is not None else 10**9)

    def next_request():
        i = next(counter, None)
        return None if i is None else create_request(i, prefix)

    async def main():
        await asyncio.gather(*(_connection(port, next_request, latencies, statuses, stop_at)
                               for _ in range(connections)))

    started = time.monotonic()
    asyncio.run(main())
    return len(latencies), time.monotonic() - started, latencies, statuses


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
