"""A fault-injecting TCP proxy on loopback, between a terminal and the server.

Modes (switchable while running): pass, latency, reset_before (the request never reaches
the server), reset_after (the server committed, the answer is cut), blackhole (nothing
comes back until the client gives up), trickle (the answer dribbles out slowly).
One HTTP exchange per connection: clients under test send `Connection: close`.
"""

from __future__ import annotations

import socket
import struct
import threading
import time


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a crashed peer or a middlebox would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def read_http(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


class FaultProxy:
    def __init__(
        self, target_port: int, mode: str = "pass", latency_s: float = 0.2, trickle_s: float = 0.02
    ) -> None:
        self.target_port = target_port
        self.mode = mode
        self.latency_s = latency_s
        self.trickle_s = trickle_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.listener.settimeout(0.2)
        self.stopped = threading.Event()
        self.forwarded = 0
        self.cut = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        mode = self.mode
        try:
            client.settimeout(10)
            request = read_http(client)
            if not request:
                client.close()
                return
            if mode == "reset_before":
                self.cut += 1
                _reset(client)
                return
            if mode == "blackhole":
                self.stopped.wait(30)  # hold it open, say nothing: the client times out
                client.close()
                return
            if mode == "latency":
                time.sleep(self.latency_s)
            with socket.create_connection(("127.0.0.1", self.target_port), timeout=30) as up:
                up.sendall(request)
                response = read_http(up)
            self.forwarded += 1
            if mode == "reset_after":
                self.cut += 1
                _reset(client)
                return
            if mode == "latency":
                time.sleep(self.latency_s)
            if mode == "trickle":
                for index in range(0, len(response), 16):
                    client.sendall(response[index : index + 16])
                    time.sleep(self.trickle_s)
            else:
                client.sendall(response)
            client.close()
        except OSError:
            _reset(client)

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
