"""hostile.py - hostile archives and checks on names for t0330-hostile-archives.sh.

  hostile.py make DIR CANARY UID GID   writes the archives into DIR
  hostile.py names json|tar|zip|dir X  prints the entry names of an ls --json
                                       output, a tar, a zip or a directory tree,
                                       one repr() of their bytes a line, sorted
  hostile.py safe tar|zip FILE         fails unless every name (and hard link
                                       target) is relative without '..'
  hostile.py clean FILE                fails unless FILE is valid UTF-8 without
                                       control characters but newline
  hostile.py at FILE OFFSET N          prints N bytes of FILE at OFFSET
"""
import io
import json
import os
import struct
import sys
import tarfile
import zipfile
import zlib

ENC = dict(encoding="utf-8", errors="surrogateescape")


def add(tf, name, data=b"x", **kw):
    ti = tarfile.TarInfo(name)
    for k, v in kw.items():
        setattr(ti, k, v)
    if ti.type == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def make(out, canary, uid, gid):
    def tar(name, fmt=tarfile.PAX_FORMAT):
        return tarfile.open(os.path.join(out, name), "w", format=fmt, **ENC)

    # Refused at ingest.
    with tar("dotdot.tar") as tf:
        add(tf, "ok.txt")
        add(tf, "a/../../b", b"escape")
    with tar("dotdot-esc.tar") as tf:
        add(tf, "evil\x1b[2J\x1b]0;pwned\x07/../../x", b"escape")
    with tar("hardlink-out.tar") as tf:
        add(tf, "evil", type=tarfile.LNKTYPE, linkname="a/../../../etc/passwd")
    with tar("toolong.tar") as tf:
        add(tf, "x/" * 2100 + "f", b"too long")
    with tar("trunc.tar") as tf:
        ti = tarfile.TarInfo("big.bin")
        ti.size = 10 << 30
        tf.addfile(ti)  # a header claiming 10 GiB, then no data
    with open(os.path.join(out, "trunc.tar"), "r+b") as f:
        f.seek(0, 2)
        f.write(b"y" * 700)
    # Stored.
    with tar("absolute.tar") as tf:
        add(tf, "/etc/passwd", b"root::0:0::/:/bin/sh\n")
        add(tf, "//double/slash.txt", b"abs")
    with tar("symlinks.tar") as tf:
        add(tf, "link", type=tarfile.SYMTYPE, linkname=canary)
        add(tf, "link/planted.txt", b"through the link")
        add(tf, "d", type=tarfile.SYMTYPE, linkname=canary)
        add(tf, "d/sub/deeper.txt", b"through the dir link")
        add(tf, "rel", type=tarfile.SYMTYPE, linkname="../canary")
        add(tf, "rel/planted2.txt", b"through the relative link")
        add(tf, "s", type=tarfile.SYMTYPE, linkname=canary)
        add(tf, "zz", type=tarfile.LNKTYPE, linkname="s/victim.txt", mode=0o4777)
        add(tf, "zzz", type=tarfile.LNKTYPE, linkname="p/victim.txt", mode=0o777)
        add(tf, "p/new.txt", b"into the planted link")
    with tar("hardlinks.tar") as tf:
        add(tf, "real.txt", b"real")
        add(tf, "ghost", type=tarfile.LNKTYPE, linkname="not/there")
        add(tf, "abs", type=tarfile.LNKTYPE, linkname="/real.txt")
    with tar("special.tar") as tf:
        add(tf, "dev/null0", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add(tf, "dev/sda0", type=tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o666)
        add(tf, "fifo", type=tarfile.FIFOTYPE, mode=0o644)
        add(tf, "suid", b"#!/bin/sh\nid\n", mode=0o4755, uid=0, gid=0)
        add(tf, "sgid", b"#!/bin/sh\nid\n", mode=0o2755, uid=0, gid=0)
        add(tf, "suid-mine", b"#!/bin/sh\nid\n", mode=0o6755, uid=uid, gid=gid)
        add(tf, "sticky", type=tarfile.DIRTYPE, mode=0o1777)
    with tar("names.tar", tarfile.GNU_FORMAT) as tf:
        add(tf, "nl\nname", b"1")
        add(tf, "esc\x1b[31mred\x1b[0m", b"2")
        add(tf, "cr\rname", b"3")
        add(tf, "tab\tname", b"4")
        add(tf, "ctl\x01\x7f", b"5")
        add(tf, "bad\udcff\udcfeutf8", b"6")
        add(tf, "c1\u009bcsi", b"7")
        add(tf, "back\\slash", b"8")
        add(tf, "dirnl\n/inner", b"9")
        add(tf, "link\x1b[1m", type=tarfile.SYMTYPE, linkname="target\n\x1b[2J")
    with tar("nul.tar") as tf:
        ti = tarfile.TarInfo("placeholder")
        ti.pax_headers = {"path": "nul\x00hidden"}
        ti.size = 1
        tf.addfile(ti, io.BytesIO(b"n"))
    with tar("long.tar") as tf:
        add(tf, "L" * 255, b"long component")
        add(tf, "d123456789/" * 270 + "deep.txt", b"deep")
    with tar("dup.tar") as tf:
        add(tf, "dup.txt", b"first")
        add(tf, "dup.txt", b"second")
        add(tf, "x", type=tarfile.DIRTYPE)
        add(tf, "x/y", b"under x")
        add(tf, "x", b"now a file")
    with tar("sparse.tar") as tf:
        # GNU sparse 1.0 in pax: 1 TiB of which 5 bytes are data.
        ti = tarfile.TarInfo("GNUSparseFile.0/huge.img")
        real = 1 << 40
        ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                          "GNU.sparse.name": "huge.img", "GNU.sparse.realsize": str(real)}
        m = b"1\n%d\n5\n" % (real - 4096)
        data = m + b"\0" * (512 - len(m)) + b"hello"
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    # A zip bomb: 1 GiB of zeros deflated to about 1 MiB.  After a full
    # flush deflate's output for the same input repeats, so one block's
    # output is written 1024 times.
    blk = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(blk) + c.flush(zlib.Z_FULL_FLUSH)
    rep = c.compress(blk) + c.flush(zlib.Z_FULL_FLUSH)
    assert rep == c.compress(blk) + c.flush(zlib.Z_FULL_FLUSH)
    body = first + rep * 1023 + c.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(1024):
        crc = zlib.crc32(blk, crc)
    name = b"zeros.bin"
    usize = 1 << 30
    with open(os.path.join(out, "bomb.zip"), "wb") as f:
        f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(body), usize, len(name), 0))
        f.write(name + body)
        cd = f.tell()
        f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(body), usize,
                            len(name), 0, 0, 0, 0, 0o100644 << 16, 0))
        f.write(name)
        end = f.tell()
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, end - cd, cd, 0))


def zip_names(path):
    """Raw names from a zip's central directory (zipfile would decode them)."""
    data = open(path, "rb").read()
    e = data.rfind(b"PK\x05\x06")
    n, size, off = struct.unpack("<HII", data[e + 10:e + 20])
    names = []
    for _ in range(n):
        nl, xl, cl = struct.unpack("<HHH", data[off + 28:off + 34])
        names.append(data[off + 46:off + 46 + nl])
        off += 46 + nl + xl + cl
    return names


def names(kind, what):
    if kind == "json":
        out = [e["path"].encode("utf-8", "surrogateescape") for e in json.load(open(what))]
    elif kind == "tar":
        with tarfile.open(what, **ENC) as tf:
            out = [m.name.encode("utf-8", "surrogateescape") for m in tf]
    elif kind == "zip":
        out = [n.rstrip(b"/") for n in zip_names(what)]
    else:
        root = os.fsencode(what)
        out = []
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                out.append(os.path.relpath(os.path.join(d, n), root))
    for n in sorted(out):
        print(repr(n))


def safe(kind, path):
    if kind == "tar":
        with tarfile.open(path, **ENC) as tf:
            pairs = [(m.name, m.linkname if m.islnk() else "") for m in tf]
        pairs = [(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape")) for a, b in pairs]
    else:
        pairs = [(n, b"") for n in zip_names(path)]
    for name, link in pairs:
        for p in (name, link):
            if p and (p.startswith(b"/") or b".." in p.rstrip(b"/").split(b"/")):
                sys.exit("unsafe name %r in %s" % (p, path))


def clean(path):
    text = open(path, "rb").read().decode("utf-8")  # fails on invalid UTF-8
    for ch in text:
        if ch != "\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0):
            sys.exit("control character %r in %s" % (ch, path))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "names":
        names(sys.argv[2], sys.argv[3])
    elif cmd == "safe":
        safe(sys.argv[2], sys.argv[3])
    elif cmd == "clean":
        clean(sys.argv[2])
    elif cmd == "at":
        with open(sys.argv[2], "rb") as f:
            f.seek(int(sys.argv[3]))
            sys.stdout.write(f.read(int(sys.argv[4])).decode())
