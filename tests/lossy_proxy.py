"""A loopback TCP proxy that can lose one answer: the request reaches the server, the reply never
reaches the client.

`LossyProxy(host, port)` forwards every connection to the server. `lose_answer_after(pattern)`
arms it once: on the next connection whose client bytes contain `pattern` (e.g.
b"POST /api/v1/statuses HTTP" or the end of an SMTP DATA, b"\\r\\n.\\r\\n"), the server's next
reply is read (so the server has done the work and answered) and both sides are closed without
relaying a byte of it. That is a lost response as a client sees it: the connection drops while it
waits for the answer.
"""

from __future__ import annotations

import socket
import threading


class LossyProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed: bytes | None = None
        self._lock = threading.Lock()
        self.lost = 0  # answers swallowed so far
        self._stop = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def lose_answer_after(self, pattern: bytes) -> None:
        with self._lock:
            self._armed = pattern

    def close(self) -> None:
        self._stop = True
        self._listener.close()
        for s in list(self._sockets):
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> LossyProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            self._sockets += [client, server]
            state = {"drop": False, "seen": b""}
            threading.Thread(target=self._client_to_server, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._server_to_client, args=(server, client, state), daemon=True).start()

    def _client_to_server(self, client: socket.socket, server: socket.socket, state: dict) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    if self._armed is not None and not state["drop"]:
                        state["seen"] = (state["seen"] + data)[-(len(self._armed) + 65536):]
                        if self._armed in state["seen"]:
                            state["drop"] = True
                            self._armed = None
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(server)

    def _server_to_client(self, server: socket.socket, client: socket.socket, state: dict) -> None:
        try:
            while data := server.recv(65536):
                if state["drop"]:
                    # The server has answered: the work is done. The client never hears of it.
                    self.lost += 1
                    break
                client.sendall(data)
        except OSError:
            pass
        finally:
            for s in (client, server):
                _shutdown(s)
                s.close()


def _shutdown(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
