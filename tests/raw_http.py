"""HTTP by hand over a socket, so a caller controls exactly how much of a body goes out.

Used by the body-limit tests and by `scripts/probe_bodies.py`. Loopback only.
"""

from __future__ import annotations

import select
import socket

MIB = 1 << 20


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *[f"{k}: {v}" for k, v in headers.items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1])


def declared_only(port: int, path: str, length: int, timeout: float = 10) -> int:
    """Declare a JSON body of `length` bytes, send none of it, and return the status."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        headers = {"Content-Type": "application/json", "Content-Length": str(length)}
        sock.sendall(_head(path, headers))
        return _status(sock)


def streamed(
    port: int, path: str, total: int, chunk: int = 64 * 1024, timeout: float = 60
) -> tuple[int, int]:
    """POST up to `total` bytes chunked, stopping once the server answers.

    Return the status and how many bytes went out before the answer came.
    """
    sent = 0
    piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        sock.sendall(_head(path, headers))
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], timeout)
            if readable:
                break  # the server answered before the body was over
            if not writable:
                raise TimeoutError(f"the server neither read nor answered in {timeout} s")
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += chunk
        else:
            sock.sendall(b"0\r\n\r\n")
        return _status(sock), sent
