"""Regenerate (or check) the GLUE sample in this folder from the full classic glue_data files.

    python data/glue-sample/make_sample.py --glue ../shared/glue            # rewrite the sample files
    python data/glue-sample/make_sample.py --glue ../shared/glue --check    # compare, write nothing

Every sample line is a line of the original file, byte for byte (header, UTF-8 BOM and final newline included);
nothing is parsed and written back. The rule, per file (see README.md):

1. keep the header line;
2. STS-B only: keep the rows whose ``filename`` column is ``images`` (the subset whose text licence is clear);
3. group the remaining rows by stratum: the label (MRPC ``Quality``), or the whole-number band of the score
   (STS-B: 0-1, 1-2, 2-3, 3-4, 4-5, with 5.0 in the top band);
4. give each stratum its share of the quota by largest remainder (ties to the lower stratum);
5. take that many rows from each stratum, evenly spaced in file order (positions floor(i * n / k), i = 0..k-1);
6. write the chosen rows in their original order.

No random numbers, so the result cannot depend on a library version.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The originals (sha256 as recorded in shared/glue/README.md), how many data rows to keep, and the rule's inputs.
FILES = {
    "MRPC/train.tsv": {"sha256": "69abcedee3cf738c6ce58d772e43e1b7cdf5b4edee4aceda459c0d9f4e5599f3", "rows": 400},
    "MRPC/dev.tsv": {"sha256": "9e8f284788040f7c9ecde2e1b3c07237c756f926bd9ef8548ef5d34b56f69f17", "rows": 200},
    "STS-B/train.tsv": {"sha256": "41c4d978b6162abdcada7e49a982211954cca5459c228db478af333124b257a2", "rows": 400},
    "STS-B/dev.tsv": {"sha256": "fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59", "rows": 200},
}
# Copied whole: the licence note that ships with the STS-B data.
COPIED = {"STS-B/LICENSE.txt": "3dfc3217395f8c5dd05c5f8995f25fe2f8fd258e6dd770b3de480749caee8c70"}

STRATUM_COLUMN = {"MRPC": "Quality", "STS-B": "score"}
KEEP_ONLY = {"STS-B": ("filename", b"images")}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split_lines(data: bytes) -> list[bytes]:
    """The file's lines with their b"\\n" kept; the last one may lack it (it does not in these files)."""
    lines = data.split(b"\n")
    out = [line + b"\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def fields(line: bytes) -> list[bytes]:
    return line.rstrip(b"\n").split(b"\t")


def stratum(task: str, value: bytes) -> str:
    text = value.decode("utf-8").strip()
    if task == "STS-B":
        band = min(int(math.floor(float(text))), 4)
        return f"{band}-{band + 1}"
    return text


def quotas(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Largest-remainder shares of ``total`` in proportion to ``sizes`` (ties: the stratum that sorts first)."""
    n = sum(sizes.values())
    if total > n:
        raise ValueError(f"asked for {total} rows, only {n} available")
    exact = {k: total * v / n for k, v in sizes.items()}
    out = {k: math.floor(x) for k, x in exact.items()}
    left = total - sum(out.values())
    for k in sorted(sizes, key=lambda k: (-(exact[k] - out[k]), k))[:left]:
        out[k] += 1
    return out


def select(task: str, data: bytes, rows: int) -> bytes:
    """The sample of one file (``task`` is the folder name, MRPC or STS-B) as bytes."""
    lines = split_lines(data)
    header, body = lines[0], lines[1:]
    names = fields(header)
    names[0] = names[0].removeprefix(b"\xef\xbb\xbf")  # MRPC's header starts with a BOM
    if task in KEEP_ONLY:
        column, wanted = KEEP_ONLY[task]
        col = names.index(column.encode())
        body = [line for line in body if fields(line)[col] == wanted]
    col = names.index(STRATUM_COLUMN[task].encode())
    groups: dict[str, list[int]] = {}
    for pos, line in enumerate(body):
        groups.setdefault(stratum(task, fields(line)[col]), []).append(pos)
    chosen = []
    for key, k in quotas({key: len(v) for key, v in groups.items()}, rows).items():
        members = groups[key]
        chosen += [members[i * len(members) // k] for i in range(k)]
    return header + b"".join(body[pos] for pos in sorted(chosen))


def build(glue_dir: str | Path) -> dict[str, bytes]:
    """Every file of the sample, by path relative to the sample folder, from the full glue_data folder."""
    root = Path(glue_dir)
    out = {}
    for rel, spec in FILES.items():
        data = (root / rel).read_bytes()
        if sha256(data) != spec["sha256"]:
            raise ValueError(f"{root / rel}: sha256 {sha256(data)} is not the recorded {spec['sha256']}")
        out[rel] = select(rel.split("/")[0], data, spec["rows"])
    for rel, digest in COPIED.items():
        data = (root / rel).read_bytes()
        if sha256(data) != digest:
            raise ValueError(f"{root / rel}: sha256 {sha256(data)} is not the recorded {digest}")
        out[rel] = data
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--glue", required=True, help="the full classic glue_data folder (MRPC/, STS-B/, ...)")
    parser.add_argument("--out", default=str(HERE), help="where the sample goes (default: this folder)")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; write nothing")
    args = parser.parse_args(argv)
    out = Path(args.out)
    bad = 0
    for rel, data in build(args.glue).items():
        path = out / rel
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            bad += not same
            print(f"{'ok  ' if same else 'DIFF'} {rel}  {sha256(data)}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            print(f"wrote {rel}  {len(data)} bytes  {sha256(data)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
