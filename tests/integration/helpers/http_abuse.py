#!/usr/bin/env python3
"""Abusive HTTP/WebSocket clients for tests/integration/test_abuse_http.sh, on loopback only.

  http_abuse.py slowloris PORT N       N requests whose head trickles in one byte at a time
                                       and never ends: each must get 408 and be closed
  http_abuse.py huge-headers PORT      a request head of 64 KiB: must get 431
  http_abuse.py ws-huge-message PORT SIZE
                                       a WebSocket (qmux) upgrade, then one binary message of
                                       SIZE bytes: the relay must close with 1009
  http_abuse.py idle-upgrades PORT N   N WebSocket upgrades that never send a byte after the
                                       101: prints "upgraded U refused R" (refused: 503);
                                       the relay must close every upgraded one
  http_abuse.py held-upgrades PORT N   N WebSocket upgrades held open (never a byte after the
                                       101) until all N were answered: prints "upgraded U
                                       refused R", then closes them
  http_abuse.py held-connections PORT N
                                       N keep-alive connections opened one after the other,
                                       each asking GET /health and then held open: prints
                                       "served S refused R" (refused: 503 and closed)

Prints one "ok ..." line and exits 0 when the relay behaved, else prints why and exits 1.
Every wait is bounded (BOUND_S); the relay's own timers decide when things happen.
"""
import base64
import os
import selectors
import socket
import struct
import sys
import time

HOST = "127.0.0.1"
BOUND_S = 30.0
SUBPROTOCOL = "qmux-01.moq-lite-05"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def connect(port):
    s = socket.create_connection((HOST, port), timeout=BOUND_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_closed(s, deadline):
    """Everything the server sends until it closes; None if it never closes in time."""
    data = b""
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return None


def slowloris(port, n):
    start = time.monotonic()
    socks = []
    for _ in range(n):
        s = connect(port)
        s.setblocking(False)
        s.send(b"GET /certificate.sha256 HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ, b"")
    got = {}
    deadline = start + BOUND_S
    while len(got) < n and time.monotonic() < deadline:
        # One more header byte on every open connection, then wait a little for answers.
        for key in list(sel.get_map().values()):
            try:
                key.fileobj.send(b"a")
            except OSError:
                pass
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                sel.modify(s, selectors.EVENT_READ, key.data + chunk)
                continue
            got[s] = key.data
            sel.unregister(s)
            s.close()
    if len(got) < n:
        fail("slowloris: %d of %d connections still open after %.0fs" % (n - len(got), n, BOUND_S))
    bad = [r for r in got.values() if not r.startswith(b"HTTP/1.1 408")]
    if bad:
        fail("slowloris: a connection ended without 408: %r" % bad[0][:80])
    print("ok slowloris: %d connections answered 408 and closed after %.1fs"
          % (n, time.monotonic() - start))


def huge_headers(port):
    s = connect(port)
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 1000) for i in range(64))
    try:
        s.sendall(b"GET /certificate.sha256 HTTP/1.1\r\nHost: localhost\r\n" + filler + b"\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before reading it all
    resp = read_until_closed(s, time.monotonic() + BOUND_S) or b""
    if not resp.startswith(b"HTTP/1.1 431"):
        fail("huge headers: expected 431, got %r" % resp[:80])
    print("ok huge headers: 431")


def ws_upgrade(port):
    s = connect(port)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: %s\r\n\r\n" % (key, SUBPROTOCOL)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            fail("upgrade: closed before the response: %r" % head[:80])
        head += chunk
    status = head.split(b"\r\n", 1)[0]
    rest = head.split(b"\r\n\r\n", 1)[1]
    return s, status, rest


def ws_frame(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def close_codes(data):
    """Status codes of the close frames in a server->client byte stream."""
    codes, i = [], 0
    while i + 2 <= len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = struct.unpack("!H", data[i:i + 2])[0], i + 2
        elif n == 127:
            n, i = struct.unpack("!Q", data[i:i + 8])[0], i + 8
        if opcode == 8 and n >= 2:
            codes.append(struct.unpack("!H", data[i:i + 2])[0])
        i += n
    return codes


def ws_huge_message(port, size):
    s, status, rest = ws_upgrade(port)
    if not status.startswith(b"HTTP/1.1 101"):
        fail("huge message: upgrade answered %r" % status)
    try:
        s.sendall(ws_frame(2, os.urandom(size)))
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed while we were still sending: what we came for
    data = read_until_closed(s, time.monotonic() + BOUND_S)
    if data is None:
        fail("huge message: the WebSocket stayed open")
    codes = close_codes(rest + data)
    if 1009 not in codes:
        fail("huge message: expected close 1009, got %r" % codes)
    print("ok huge message: %d bytes closed the WebSocket with 1009" % size)


def upgrade_many(port, n):
    """N WebSocket upgrades one after the other: the upgraded sockets, and how many got 503."""
    socks, refused = [], 0
    for _ in range(n):
        s, status, _ = ws_upgrade(port)
        if status.startswith(b"HTTP/1.1 101"):
            socks.append(s)
        elif status.startswith(b"HTTP/1.1 503"):
            refused += 1
            s.close()
        else:
            fail("upgrades: answered %r" % status)
    print("upgraded %d refused %d" % (len(socks), refused), flush=True)
    return socks, refused


def held_upgrades(port, n):
    socks, _ = upgrade_many(port, n)
    for s in socks:
        s.close()


def idle_upgrades(port, n):
    start = time.monotonic()
    socks, refused = upgrade_many(port, n)
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    deadline = start + BOUND_S
    closed = 0
    while closed < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if chunk:
                continue  # the close frame; the TCP close follows
            sel.unregister(key.fileobj)
            key.fileobj.close()
            closed += 1
    if closed < len(socks):
        fail("idle upgrades: %d of %d still open after %.0fs" % (len(socks) - closed, len(socks), BOUND_S))
    print("ok idle upgrades: %d upgraded and closed by the relay after %.1fs, %d refused"
          % (len(socks), time.monotonic() - start, refused))


def held_connections(port, n):
    held, refused = [], 0
    for _ in range(n):
        s = connect(port)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: relay\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 503"):
            refused += 1
            s.close()
        elif data.startswith(b"HTTP/1.1 200"):
            held.append(s)
        else:
            fail("held connections: answered %r" % data[:40])
    print("served %d refused %d" % (len(held), refused), flush=True)
    for s in held:
        s.close()


def main():
    if len(sys.argv) < 3:
        fail(__doc__)
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "slowloris":
        slowloris(port, int(sys.argv[3]))
    elif what == "huge-headers":
        huge_headers(port)
    elif what == "ws-huge-message":
        ws_huge_message(port, int(sys.argv[3]))
    elif what == "idle-upgrades":
        idle_upgrades(port, int(sys.argv[3]))
    elif what == "held-upgrades":
        held_upgrades(port, int(sys.argv[3]))
    elif what == "held-connections":
        held_connections(port, int(sys.argv[3]))
    else:
        fail("unknown case " + what)


if __name__ == "__main__":
    main()
