#!/usr/bin/env python3
"""Hand-crafted protocol messages for the bad-input tests.

rawclient.py SOCKET CASE  -- runs one case and prints what lumbungd answered
(the first frame's type and message), or 'closed' when it hung up.
"""
import socket
import struct
import sys


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
