#!/usr/bin/env python3
"""Hand-crafted protocol messages for the bad-input tests.

rawclient.py SOCKET CASE  -- runs one case and prints what lumbungd answered
(the first frame's type and message), or 'closed' when it hung up.
"""
import os
import socket
import struct
import sys
import time


def frame(mtype, payload=b"", version=1, magic=b"LB"):
    return magic + bytes([version, mtype]) + struct.pack("<I", len(payload)) + payload


def uv(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def s(text):
    data = text.encode()
    return uv(len(data)) + data


def read_frame(sock):
    head = b""
    while len(head) < 8:
        chunk = sock.recv(8 - len(head))
        if not chunk:
            return None, b""
        head += chunk
    length = struct.unpack("<I", head[4:])[0]
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return head[3], body


def error_text(body):
    # ERROR: uv code, str message
    i = 0
    while body[i] & 0x80:
        i += 1
    i += 1
    n, j = 0, 0
    while True:
        b = body[i]
        n |= (b & 0x7F) << (7 * j)
        i += 1
        j += 1
        if not b & 0x80:
            break
    return body[i:i + n].decode(errors="replace")


def entry(path, ftype=1, size=0):
    # A manifest record: str path, u8 type, uv mode, uid, gid, str uname,
    # str gname, sv mtime, sv ctime, uv size, dev, ino, nlink, str link,
    # uv rdev major, minor, uv nxattr, str acl a, str acl d, uv nextents,
    # uv nchunks.
    rec = s(path) + bytes([ftype]) + uv(0o644) + uv(0) + uv(0) + s("") + s("") \
        + uv(0) + uv(0) + uv(size) + uv(0) + uv(0) + uv(1) + s("") + uv(0) + uv(0) \
        + uv(0) + s("") + s("") + uv(0) + uv(0)
    return uv(len(rec)) + rec


def main():
    path, case = sys.argv[1], sys.argv[2]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    hello = frame(1, s("raw-test"))
    if case == "garbage":
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    elif case == "oversize":
        sock.sendall(b"LB\x01\x01" + struct.pack("<I", 0x7FFFFFFF))
    elif case == "version":
        sock.sendall(frame(1, s("raw-test"), version=9))
    elif case == "no-hello":
        sock.sendall(frame(9, s("") + s("")))
    elif case == "truncated-hello":
        sock.sendall(frame(1, b"\x05ab"))
    elif case == "unknown-type":
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(200, b""))
    elif case == "chunks-from-client":
        # An entry that claims chunk ids: never accepted.
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(2, s("dinkes") + s("evil") + s("h") + uv(0)))
        read_frame(sock)
        rec_body = s("stolen") + bytes([1]) + uv(0o644) + uv(0) + uv(0) + s("") + s("") \
            + uv(0) + uv(0) + uv(5) + uv(0) + uv(0) + uv(1) + s("") + uv(0) + uv(0) \
            + uv(0) + s("") + s("") + uv(0) + uv(1) + b"\x11" * 32 + uv(5)
        sock.sendall(frame(3, uv(len(rec_body)) + rec_body))
    elif case == "short-data":
        # A file that says 100 bytes but brings 3.
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(2, s("dinkes") + s("short") + s("h") + uv(0)))
        read_frame(sock)
        sock.sendall(frame(4, entry("f.txt", 1, 100)))
        sock.sendall(frame(5, b"abc"))
        sock.sendall(frame(6, uv(0) + uv(100)))
    elif case.startswith("read-other:"):
        # READ of a snapshot named on the command line, tenant left empty.
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(11, s("") + s(case.split(":", 1)[1]) + uv(0)))
    elif case.startswith("disconnect-mid-file"):
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(2, s("dinkes") + s("cut") + s("h") + uv(0)))
        read_frame(sock)
        sock.sendall(frame(4, entry("big.bin", 1, 10 << 20)))
        sock.sendall(frame(5, b"x" * 65536))
        sock.close()
        print("closed-by-client")
        return
    elif case in ("silent", "half-header", "half-frame", "silent-backup"):
        # A client that stops: the daemon must drop it on its own, within
        # client_timeout.  Waits at most 60 s; prints the daemon's answer,
        # then "dropped" (with the time it took) or "still open".
        if case == "half-header":
            sock.sendall(hello[:5])
        elif case == "half-frame":
            sock.sendall(hello[:len(hello) - 3])
        elif case == "silent-backup":
            sock.sendall(hello)
            read_frame(sock)
            sock.sendall(frame(2, s(sys.argv[3]) + s("stalled") + s("h") + uv(0)))
            print("backup answered frame %s" % read_frame(sock)[0], flush=True)
        t0 = time.monotonic()
        sock.settimeout(60)
        try:
            got = b""
            while True:
                more = sock.recv(65536)
                if not more:
                    break
                got += more
            if len(got) >= 8 and got[3] == 66:
                print("error: " + error_text(got[8:]))
            print("dropped after %.1f s" % (time.monotonic() - t0))
        except socket.timeout:
            print("still open")
        return
    elif case.startswith("stall-read:"):
        # READ a snapshot and read nothing of the answer until the file
        # GO exists (at most 60 s), then drain: "cut off" when the daemon
        # gave up on the stalled answer, "whole" when it ended with END.
        _, tenant, name, go = case.split(":", 3)
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(11, s(tenant) + s(name) + uv(0)))
        print("stalled", flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(go) and time.monotonic() < deadline:
            time.sleep(0.05)
        sock.settimeout(60)
        last = None
        while True:
            mtype, body = read_frame(sock)
            if mtype is None:
                break
            last = mtype
        print("whole" if last == 67 else "cut off")
        return
    elif case.startswith("oversize-alloc:"):
        # Half-sent big frames: a header claiming LEN bytes, SENT of them,
        # then hang up.  Repeated COUNT times; the daemon's frame buffer for
        # each must be freed with its connection.
        _, count, length, sent = case.split(":")
        for _ in range(int(count)):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(path)
            c.sendall(hello)
            read_frame(c)
            c.sendall(b"LB\x01\x09" + struct.pack("<I", int(length)) + b"\0" * int(sent))
            c.close()
        print("sent %s" % count)
        return
    elif case.startswith("flood:"):
        # COUNT connections at once, each greeted: how many were welcomed and
        # how the others were refused.  Held open until the file HOLD is
        # gone (at most 60 s).
        _, count, hold = case.split(":", 2)
        conns, welcomed, refused = [sock], 0, {}
        for _ in range(int(count) - 1):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(path)
            conns.append(c)
        for c in conns:
            try:
                c.sendall(hello)
            except OSError:
                pass
            mtype, body = read_frame(c)
            if mtype == 64:
                welcomed += 1
            else:
                why = error_text(body) if mtype == 66 else "closed"
                refused[why] = refused.get(why, 0) + 1
        print("welcomed %d refused %s" % (welcomed, refused), flush=True)
        deadline = time.monotonic() + 60
        while os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)
        for c in conns:
            c.close()
        return
    elif case.startswith("req:"):
        # Any request with string fields: req:TYPE:FIELD:FIELD... ("~n" is a
        # uv n instead of a string).
        parts = case.split(":")[1:]
        body = b""
        for f in parts[1:]:
            body += uv(int(f[1:])) if f.startswith("~") else s(f)
        sock.sendall(hello)
        read_frame(sock)
        sock.sendall(frame(int(parts[0]), body))
    else:
        raise SystemExit("unknown case " + case)
    mtype, body = read_frame(sock)
    if mtype is None:
        print("closed")
    elif mtype == 66:
        print("error: " + error_text(body))
    else:
        print("frame %d" % mtype)
    # The daemon must hang up after a protocol error.
    try:
        sock.settimeout(5)
        more = sock.recv(1)
        print("then closed" if more == b"" else "then more data")
    except socket.timeout:
        print("then still open")


if __name__ == "__main__":
    main()
