#!/usr/bin/env python3
"""gen_sqldump.py - one large mysqldump-style SQL dump, and a night's change to it.

Deterministic, standard library only: the same arguments (and the same
sequence of --mutate calls) give byte-identical files.

  gen_sqldump.py --out FILE [--size-mb 1024] [--seed 20240301]
      writes FILE: the dump of a district health system (simpus_prod), one
      INSERT per row (mysqldump --skip-extended-insert), four tables,
      about 180 bytes a row, until FILE holds SIZE MiB
  gen_sqldump.py --out FILE --mutate update [--seed S]
      rewrites FILE in place (same inode, like `mysqldump > FILE`) with 1 %
      of the rows of every table changed in place: 85 % of them in runs of
      consecutive rows (20-2000 rows, log-uniform; 60 % of the runs among
      the newest 20 % of the table: batch jobs on recent records), 15 %
      scattered single rows; an updated row keeps its id and place, its
      mutable columns get new values (its length may change)
  gen_sqldump.py --out FILE --mutate insert [--seed S]
      rewrites FILE in place with 1 % more rows in every table, inserted in
      the middle: 2-8 clusters at random places between 5 % and 95 % of
      the table, with new ids (as after an import that the dump orders by
      a key other than the id)

Each mutation moves the dump's date one day on ("Dump started on" in the
header, "Dump completed on" in the footer, the file's mtime), and the
date seeds the mutation: run the same mutations in the same order with the
same --seed to get the same files.  --scattered F changes the share of the
updated rows that are scattered single rows (default 0.15, the model of
../shared/bench/gen_dataset.py's nightly dump changes), for experiments.
"""

import argparse
import calendar
import math
import os
import random
import re
import sys
import time

MiB = 1 << 20
DAY = 86400
T0 = 1709251200  # 2024-03-01 00:00:00 UTC: night 0's dump

FIRST = ("Budi Siti Agus Dewi Sri Joko Rina Wahyu Eko Dian Adi Andi Ahmad Muhammad Nur Putri Ratna Yusuf "
         "Hendra Lestari Bambang Indah Teguh Wulan Rudi Ayu Fajar Sari Hadi Yanti Made Ketut Nyoman Wayan "
         "Dedi Yuli Asep Euis Ujang Neng Ilham Fitri Rizky Maya Arif Nanda Bayu Citra Galih Intan").split()
LAST = ("Santoso Wijaya Saputra Pratama Hidayat Nugroho Setiawan Kurniawan Susanto Hartono Gunawan "
        "Siregar Nasution Harahap Lubis Simanjuntak Sitompul Hutapea Tanjung Rahman Hakim Syahputra "
        "Purnomo Wibowo Suryadi Sulistyo Permana Ramadhan Firmansyah Maulana Utama Siswanto").split()
PLACES = [p + s for p in "Suka Sumber Karang Tanjung Kebon Marga Mekar Sido Tegal Wono Kali Pasir Ci Baru".split()
          for s in "maju jadi sari mulya rejo harjo jaya asih makmur indah baru wangi agung".split()]
STREETS = ["Jl. " + s for s in ("Merdeka", "Sudirman", "Diponegoro", "Ahmad Yani", "Pahlawan", "Veteran",
                                "Pemuda", "Gajah Mada", "Hayam Wuruk", "Kartini", "Imam Bonjol", "Cendrawasih")]
POLI = ["Umum", "Gigi", "KIA", "KB", "Lansia", "MTBS", "Gizi", "Imunisasi", "TB Paru", "Laboratorium"]
DIAG = ["J00 Nasofaringitis akut", "I10 Hipertensi esensial", "E11 Diabetes melitus tipe 2", "K30 Dispepsia",
        "A09 Diare dan gastroenteritis", "J06.9 ISPA", "M79.1 Mialgia", "L30.9 Dermatitis", "R50.9 Demam",
        "K04.7 Abses periapikal", "O80 Persalinan normal", "Z00.0 Pemeriksaan umum", "H10.9 Konjungtivitis"]
VISIT_STATUS = ["MENUNGGU", "DIPERIKSA", "RUJUK", "SELESAI", "SELESAI", "SELESAI", "BATAL"]
OBAT = ["Paracetamol 500 mg", "Amoxicillin 500 mg", "Antasida DOEN", "Amlodipin 5 mg", "Metformin 500 mg",
        "CTM 4 mg", "Vitamin B Kompleks", "Ibuprofen 400 mg", "Oralit 200 ml", "Salep 2-4",
        "Captopril 25 mg", "Dexamethason 0.5 mg", "Ambroxol 30 mg", "Tablet Tambah Darah"]
ATURAN = ["3x1 sesudah makan", "2x1 sesudah makan", "1x1 pagi", "3x1 bila demam", "1x1 malam", "oles 2x sehari"]
RESEP_STATUS = ["DIRESEPKAN", "DISIAPKAN", "DISERAHKAN", "DISERAHKAN", "DISERAHKAN"]
PENJAMIN = ["BPJS PBI", "BPJS Non PBI", "Umum", "Jamkesda", "BPJS PBI", "BPJS PBI"]
BAYAR_STATUS = ["BELUM", "LUNAS", "LUNAS", "KLAIM_DIAJUKAN", "KLAIM_DIBAYAR", "DITOLAK"]
NAMES = sorted({a + " " + b for a in FIRST for b in LAST} |
               {a + " " + b + " " + c for a in FIRST[:12] for b in FIRST[12:30] for c in LAST[:8]})

# Tables: (name, share of the rows' bytes, columns).  A column is
# (name, sqltype, mutable); values come from row_values() below.
TABLES = [
    ("pasien", 0.20, [("no_rm", "char(10)", False), ("nik", "char(16)", False), ("nama", "varchar(100)", False),
                      ("jenis_kelamin", "char(1)", False), ("tanggal_lahir", "date", False),
                      ("alamat", "varchar(200)", True), ("desa", "varchar(60)", True), ("telepon", "varchar(20)", True),
                      ("penjamin", "varchar(20)", True), ("no_kartu", "varchar(20)", True),
                      ("updated_at", "datetime", True)]),
    ("kunjungan", 0.40, [("no_rawat", "varchar(24)", False), ("pasien_id", "bigint", False),
                         ("tanggal", "datetime", False), ("poli", "varchar(30)", False),
                         ("keluhan", "varchar(255)", True), ("diagnosa", "varchar(80)", True),
                         ("tensi", "varchar(8)", True), ("berat_kg", "decimal(5,1)", True),
                         ("status", "varchar(12)", True), ("dokter_id", "int", True), ("updated_at", "datetime", True)]),
    ("resep", 0.25, [("no_resep", "varchar(24)", False), ("kunjungan_id", "bigint", False),
                     ("obat", "varchar(60)", False), ("jumlah", "int", True), ("aturan_pakai", "varchar(40)", True),
                     ("status", "varchar(12)", True), ("updated_at", "datetime", True)]),
    ("tagihan", 0.15, [("no_tagihan", "varchar(24)", False), ("kunjungan_id", "bigint", False),
                       ("penjamin", "varchar(20)", True), ("jumlah", "decimal(14,2)", True),
                       ("status", "varchar(16)", True), ("kode_klaim", "varchar(32)", True),
                       ("updated_at", "datetime", True)]),
]
WORDS = ("sakit kepala demam batuk pilek nyeri perut mual muntah pusing lemas sesak napas gatal ruam "
         "sejak dua tiga hari minggu lalu kambuh kontrol rutin obat habis periksa tekanan darah gula "
         "luka bengkak kaki tangan dada punggung sendi gigi berlubang mata merah telinga").split()


def R(*parts):
    """An independent deterministic generator for one purpose."""
    return random.Random(":".join(str(p) for p in parts))


def stamp(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def row_values(table, rng, rid, now):
    """The SQL literals of one row of table (after the id), drawn from rng."""
    rr = rng.random
    if table == "pasien":
        born = T0 - int((1 + rr() * 80) * 365.25 * DAY)
        return ["'RM%08d'" % rid, "'32%02d%02d%010d'" % (1 + int(rr() * 27), 1 + int(rr() * 40), int(rr() * 1e10)),
                "'%s'" % NAMES[int(rr() * len(NAMES))], "'%s'" % "LP"[int(rr() * 2)],
                "'%s'" % time.strftime("%Y-%m-%d", time.gmtime(born)),
                "'%s No. %d RT %02d/RW %02d'" % (STREETS[int(rr() * len(STREETS))], 1 + int(rr() * 200),
                                                 1 + int(rr() * 15), 1 + int(rr() * 9)),
                "'%s'" % PLACES[int(rr() * len(PLACES))], "'08%010d'" % int(rr() * 1e10),
                "'%s'" % PENJAMIN[int(rr() * len(PENJAMIN))], "'%013d'" % int(rr() * 1e13),
                "'%s'" % stamp(now - int(rr() * 900 * DAY))]
    if table == "kunjungan":
        t = now - int(rr() * 700 * DAY)
        return ["'%s/%06d'" % (time.strftime("%Y/%m/%d", time.gmtime(t)), rid % 1000000), str(1 + int(rr() * 400000)),
                "'%s'" % stamp(t), "'%s'" % POLI[int(rr() * len(POLI))],
                "'%s'" % " ".join(WORDS[int(rr() * len(WORDS))] for _ in range(3 + int(rr() * 8))),
                "'%s'" % DIAG[int(rr() * len(DIAG))], "'%d/%d'" % (100 + int(rr() * 70), 60 + int(rr() * 40)),
                "%.1f" % (8 + rr() * 80), "'%s'" % VISIT_STATUS[int(rr() * len(VISIT_STATUS))],
                str(1 + int(rr() * 60)), "'%s'" % stamp(t + int(rr() * DAY))]
    if table == "resep":
        t = now - int(rr() * 700 * DAY)
        return ["'R%s%07d'" % (time.strftime("%y%m%d", time.gmtime(t)), rid % 10000000), str(1 + int(rr() * 900000)),
                "'%s'" % OBAT[int(rr() * len(OBAT))], str(1 + int(rr() * 30)),
                "'%s'" % ATURAN[int(rr() * len(ATURAN))], "'%s'" % RESEP_STATUS[int(rr() * len(RESEP_STATUS))],
                "'%s'" % stamp(t)]
    t = now - int(rr() * 700 * DAY)
    st = BAYAR_STATUS[int(rr() * len(BAYAR_STATUS))]
    return ["'INV/%s/%07d'" % (time.strftime("%Y%m", time.gmtime(t)), rid % 10000000), str(1 + int(rr() * 900000)),
            "'%s'" % PENJAMIN[int(rr() * len(PENJAMIN))], "%d.00" % (5000 * (1 + int(rr() * rr() * 400))),
            "'%s'" % st, "'%016x'" % rng.getrandbits(64) if st.startswith("KLAIM") else "NULL", "'%s'" % stamp(t)]


def prefix(table):
    return "INSERT INTO `%s` VALUES (" % table


def make_row(table, rng, rid, now):
    return prefix(table) + str(rid) + "," + ",".join(row_values(table, rng, rid, now)) + ");\n"


TOKEN = re.compile(r"'[^']*'|[^,]+")


def update_row(table, cols, line, rng, now):
    """line with its mutable columns drawn again (updated_at always)."""
    p = prefix(table)
    vals = TOKEN.findall(line[len(p):-3])
    fresh = row_values(table, rng, int(vals[0]), now)
    for i, (name, _, mutable) in enumerate(cols):
        if mutable and (name == "updated_at" or rng.random() < 0.5):
            vals[i + 1] = fresh[i] if name != "updated_at" else "'%s'" % stamp(now - int(rng.random() * DAY))
    return p + ",".join(vals) + ");\n"


def header(now):
    return ("-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n"
            "-- Host: db-simpus.dinkes.pemda.internal    Database: simpus_prod\n"
            "-- ------------------------------------------------------\n-- Server version\t8.0.36\n"
            "-- Dump started on %s\n\n"
            "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n"
            "/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;\n/*!40103 SET TIME_ZONE='+00:00' */;\n"
            "/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;\n"
            "/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;\n\n") % stamp(now)


def footer(now):
    return ("/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;\n"
            "/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;\n"
            "/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n\n"
            "-- Dump completed on %s\n") % stamp(now + 1500)


def table_head(table, cols):
    defs = ["  `id` bigint NOT NULL AUTO_INCREMENT"] + ["  `%s` %s %s" % (n, t, "DEFAULT NULL" if m else "NOT NULL")
                                                      for n, t, m in cols] + ["  PRIMARY KEY (`id`)"]
    return ("--\n-- Table structure for table `{t}`\n--\n\nDROP TABLE IF EXISTS `{t}`;\n"
            "/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
            "/*!50503 SET character_set_client = utf8mb4 */;\n"
            "CREATE TABLE `{t}` (\n{d}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;\n"
            "/*!40101 SET character_set_client = @saved_cs_client */;\n\n--\n-- Dumping data for table `{t}`\n--\n\n"
            "LOCK TABLES `{t}` WRITE;\n/*!40000 ALTER TABLE `{t}` DISABLE KEYS */;\n").format(t=table, d=",\n".join(defs))


def table_tail(table):
    return "/*!40000 ALTER TABLE `%s` ENABLE KEYS */;\nUNLOCK TABLES;\n\n" % table


def generate(path, size_mb, seed):
    now = T0
    budget = size_mb * MiB - len(header(now)) - len(footer(now)) - sum(
        len(table_head(t, c)) + len(table_tail(t)) for t, _, c in TABLES)
    written = 0
    with open(path, "w") as f:
        f.write(header(now))
        for k, (table, share, cols) in enumerate(TABLES):
            f.write(table_head(table, cols))
            # the last table takes whatever is left, so the file is SIZE MiB
            # to within one row
            goal = budget - written if k == len(TABLES) - 1 else int(budget * share)
            done, rid, block = 0, 1, 0
            while done < goal:
                rng = R(seed, table, block)
                rows = []
                for _ in range(10000):
                    row = make_row(table, rng, rid, now)
                    if done + len(row) > goal:
                        break
                    rows.append(row)
                    done += len(row)
                    rid += 1
                if not rows:
                    break
                f.write("".join(rows))
                block += 1
            written += done
            f.write(table_tail(table))
        f.write(footer(now))
    os.utime(path, (now + 1500, now + 1500))


def parse(path):
    """(date of the dump, [(table, cols, rows)]) of an existing dump."""
    with open(path) as f:
        lines = f.readlines()
    m = re.match(r"-- Dump started on (\S+ \S+)", next(ln for ln in lines[:10] if ln.startswith("-- Dump started")))
    now = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"))
    cols = {t: c for t, _, c in TABLES}
    tables = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("LOCK TABLES `"):
            t = lines[i].split("`")[1]
            j = i + 2
            k = j
            while not lines[k].startswith("/*!40000 ALTER TABLE"):
                k += 1
            tables.append((t, cols[t], lines[j:k]))
            i = k
        i += 1
    return now, tables


def mutate_update(table, cols, rows, rng, now, scattered):
    n = len(rows)
    target = max(1, n // 100)
    upd = set()
    in_runs = int(round(target * (1 - scattered)))
    rr = rng.random
    while len(upd) < in_runs:
        L = min(n, int(math.exp(rng.uniform(math.log(20), math.log(2000)))))
        start = n - int(n * 0.2 * rr()) - L if rr() < 0.6 else int(rr() * n)
        start = max(0, min(start, n - L))
        upd.update(range(start, min(n, start + L, start + in_runs - len(upd) + 1)))
    while len(upd) < target:
        upd.add(int(rr() * n))
    for k in sorted(upd):
        rows[k] = update_row(table, cols, rows[k], rng, now)
    return rows, len(upd)


def mutate_insert(table, rows, rng, now):
    n = len(rows)
    add = max(1, n // 100)
    next_id = 1 + max(int(r[len(prefix(table)):r.index(",")]) for r in rows)
    clusters = min(add, rng.randint(2, 8))
    sizes = [add // clusters] * clusters
    sizes[-1] += add - sum(sizes)
    at = {}
    for cs in sizes:
        pos = int(n * (0.05 + 0.9 * rng.random()))
        new = []
        for _ in range(cs):
            new.append(make_row(table, rng, next_id, now))
            next_id += 1
        at.setdefault(pos, []).extend(new)
    out = []
    for k, row in enumerate(rows):
        if k in at:
            out.extend(at[k])
        out.append(row)
    return out, add


def mutate(path, kind, seed, scattered):
    before, tables = parse(path)
    now = before + DAY
    changed = 0
    total = 0
    out = [header(now)]
    for table, cols, rows in tables:
        rng = R(seed, "mutate", kind, stamp(now), table)
        if kind == "update":
            rows, c = mutate_update(table, cols, rows, rng, now, scattered)
        else:
            rows, c = mutate_insert(table, rows, rng, now)
        changed += c
        total += len(rows)
        out.append(table_head(table, cols))
        out.append("".join(rows))
        out.append(table_tail(table))
    out.append(footer(now))
    with open(path, "w") as f:   # same inode, like `mysqldump > FILE`
        f.writelines(out)
    os.utime(path, (now + 1500, now + 1500))
    return changed, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the dump file")
    ap.add_argument("--size-mb", type=int, default=1024, help="size of the new dump in MiB (default 1024)")
    ap.add_argument("--seed", default="20240301")
    ap.add_argument("--mutate", choices=["update", "insert"], help="change an existing dump in place")
    ap.add_argument("--scattered", type=float, default=0.15,
                    help="share of the updated rows that are scattered single rows (default 0.15)")
    a = ap.parse_args()
    if not 0 <= a.scattered <= 1:
        ap.error("--scattered takes a share between 0 and 1")
    t = time.time()
    if a.mutate:
        if not os.path.isfile(a.out):
            ap.error("%s: no dump to mutate" % a.out)
        changed, total = mutate(a.out, a.mutate, a.seed, a.scattered)
        print("%s: %d of %d rows %s, %d bytes, %.1f s" % (a.out, changed, total,
              "updated" if a.mutate == "update" else "inserted", os.path.getsize(a.out), time.time() - t))
    else:
        if a.size_mb < 1:
            ap.error("--size-mb must be at least 1")
        generate(a.out, a.size_mb, a.seed)
        print("%s: %d bytes, %.1f s" % (a.out, os.path.getsize(a.out), time.time() - t))


if __name__ == "__main__":
    sys.exit(main())
