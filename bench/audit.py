#!/usr/bin/env python3
"""Benchmark `pipwall audit` against abi3audit and `auditwheel show` on real wheels.

    python3 bench/audit.py [--pipwall PATH] [--only NAME ...] [--runs N] [--markdown]

Standard library only (Python 3.11). The peers are installed into bench/.cache/venv
and the wheels listed in bench/wheels.txt are fetched into bench/.cache/wheels with
pip, from whatever index pip is configured with here. Every tool runs under
`/usr/bin/time -v`; wall time is measured around it with a monotonic clock, max RSS
comes from time(1). Results go to stdout (table) and bench/.cache/audit-results.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = BENCH / ".cache"
VENV = CACHE / "venv"
WHEELS = CACHE / "wheels"
RESULTS = CACHE / "audit-results.json"
WHEEL_LIST = BENCH / "wheels.txt"

PEER_PINS = {"abi3audit": "0.0.26", "auditwheel": "6.8.2"}

# PIP_* variables that only say how to reach the configured index; everything else
# (PIP_FIND_LINKS, PIP_NO_INDEX, PIP_REQUIRE_VIRTUALENV, ...) is dropped.
PIP_KEEP = {
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_PROXY",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_TIMEOUT",
    "PIP_RETRIES",
    "PIP_CONFIG_FILE",
}

LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in PIP_KEEP}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- wheel list


@dataclass
class Entry:
    filename: str | None
    sha256: str | None
    req: str
    platform: str
    pyver: str
    abi: str
    optional: bool
    line: int
    path: Path | None = None
    problem: str | None = None

    @property
    def name(self) -> str:
        return self.req.split("==", 1)[0]

    def spec(self) -> str:
        return f"{self.req}  {self.platform}  {self.pyver}  {self.abi}" + ("  optional" if self.optional else "")


def read_list(path: Path) -> list[Entry]:
    out = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) not in (6, 7) or "==" not in parts[2] or (len(parts) == 7 and parts[6] != "optional"):
            sys.exit(f"{path}:{n}: expected 'filename sha256 name==version platform python-version abi [optional]'")
        fn, sha = (None if p == "-" else p for p in parts[:2])
        out.append(Entry(fn, sha and sha.lower(), parts[2], parts[3], parts[4], parts[5], len(parts) == 7, n))
    return out


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def select(entries: list[Entry], only: list[str] | None) -> list[Entry]:
    if not only:
        return entries
    keep = []
    for e in entries:
        for o in only:
            if norm(o) == norm(e.name) or (e.filename and o.lower() in e.filename.lower()):
                keep.append(e)
                break
    return keep


# --------------------------------------------------------------------------- setup


def ensure_time() -> None:
    if Path("/usr/bin/time").exists():
        return
    log("/usr/bin/time missing: installing Debian package 'time'")
    apt = ["apt-get", "install", "-y", "-q", "time"]
    if subprocess.run(apt, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL)
        subprocess.run(apt, check=True, stdout=subprocess.DEVNULL)


def venv_bin(tool: str) -> Path:
    return VENV / "bin" / tool


def ensure_venv() -> None:
    py = venv_bin("python")
    if not py.exists():
        log(f"creating venv {VENV.relative_to(REPO)}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = "import importlib.metadata as m\nfor n in %r:\n  try: print(n, m.version(n))\n  except Exception: print(n, '-')" % (
        list(PEER_PINS),
    )
    got = dict(l.split() for l in subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines())
    if all(got.get(k) == v for k, v in PEER_PINS.items()):
        return
    reqs = [f"{k}=={v}" for k, v in PEER_PINS.items()]
    log(f"installing {' '.join(reqs)} into the bench venv")
    subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs], check=True, env=pip_env())


def download(e: Entry) -> None:
    """Fill e.path (or e.problem). Reuses a cached file whose sha256 matches."""
    if e.filename:
        cached = WHEELS / e.filename
        if cached.exists():
            if not e.sha256 or sha256_of(cached) == e.sha256:
                e.path = cached
                return
            log(f"  {e.filename}: cached file has the wrong sha256, fetching again")
            cached.unlink()
    WHEELS.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="dl-", dir=CACHE))
    try:
        cmd = [
            str(venv_bin("python")), "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
            "--implementation", "cp", "--platform", e.platform, "--python-version", e.pyver, "--abi", e.abi,
            "-d", str(tmp), e.req,
        ]  # fmt: skip
        log(f"  downloading {e.req} for {e.platform} (py {e.pyver}, {e.abi})")
        r = subprocess.run(cmd, capture_output=True, text=True, env=pip_env())
        got = sorted(tmp.glob("*.whl"))
        if r.returncode != 0 or len(got) != 1:
            tail = (r.stderr.strip().splitlines() or ["no wheel"])[-1]
            e.problem = f"download failed: {tail}"
            return
        f = got[0]
        if e.filename and f.name != e.filename:
            e.problem = f"index served {f.name}, list expects {e.filename}"
            return
        digest = sha256_of(f)
        if e.sha256 and digest != e.sha256:
            e.problem = f"sha256 mismatch: got {digest}, list expects {e.sha256}"
            return
        if not e.filename or not e.sha256:
            log(f"  resolved line {e.line} of wheels.txt:\n    {f.name}  {digest}  {e.spec()}")
            e.filename, e.sha256 = f.name, digest
        e.path = WHEELS / f.name
        shutil.move(str(f), e.path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- wheel tags


def wheel_tags(filename: str) -> tuple[list[str], list[str], list[str]]:
    """(python tags, abi tags, platform tags) of a wheel filename."""
    parts = filename[: -len(".whl")].split("-")
    py, abi, plat = parts[-3:]
    return py.split("."), abi.split("."), plat.split(".")


def linux_tag(tag: str) -> tuple[str, tuple[int, int], str] | None:
    """('manylinux'|'musllinux'|'linux', (major, minor), arch) for a Linux platform tag."""
    m = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)_(.+)", tag)
    if m:
        return m[1], (int(m[2]), int(m[3])), m[4]
    m = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(.+)", tag)
    if m:
        return "manylinux", LEGACY_MANYLINUX[m[1]], m[2]
    m = re.fullmatch(r"linux_(.+)", tag)
    if m:
        return "linux", (0, 0), m[1]
    return None


def is_linux(e: Entry) -> bool:
    return any(linux_tag(t) for t in wheel_tags(e.filename)[2])


def wants_abi3audit(e: Entry) -> tuple[bool, str]:
    if "abi3" in wheel_tags(e.filename)[1]:
        return True, "abi3 tag"
    # abi3audit also audits `.abi3.` extensions in non-abi3 wheels (yyjson is the example)
    with zipfile.ZipFile(e.path) as z:
        if any(".abi3." in n.rsplit("/", 1)[-1] for n in z.namelist()):
            return True, ".abi3 extension in a non-abi3 wheel"
    return False, ""


def auditwheel_verdict(e: Entry, overall: str) -> tuple[str, str]:
    """Compare auditwheel's overall_tag with the wheel's own Linux tags."""
    o = linux_tag(overall)
    if o is None:
        return "error", f"unparsed overall_tag {overall}"
    claimed = [t for t in (linux_tag(x) for x in wheel_tags(e.filename)[2]) if t]
    same = [c for c in claimed if c[0] == o[0] and c[2] == o[2]]
    if o[0] == "linux" or not same:
        return "fail", f"overall {overall}, wheel claims {'/'.join(t for t in wheel_tags(e.filename)[2])}"
    lowest = min(c[1] for c in same)
    if o[1] <= lowest:
        return "pass", overall
    return "fail", f"needs {o[0]}_{o[1][0]}_{o[1][1]}, tag claims {o[0]}_{lowest[0]}_{lowest[1]}"


# --------------------------------------------------------------------------- running


@dataclass
class Run:
    wall_s: float
    rss_kib: int
    exit: int
    time_elapsed: str
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")
    cpu_s: float = 0.0


def parse_time_v(text: str) -> tuple[int, str]:
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    el = re.search(r"Elapsed \(wall clock\) time .*?: (\S+)", text)
    return (int(rss[1]) if rss else -1), (el[1] if el else "?")


def run_once(cmd: list[str], timeout: float) -> Run:
    with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as d:
        tf, out, err = Path(d, "time"), Path(d, "out"), Path(d, "err")
        with out.open("wb") as fo, err.open("wb") as fe:
            # No timeout= on wait(): with one, subprocess polls in 50 ms steps and the
            # wall times come out quantised. A timer kills a run that hangs instead.
            t0 = time.perf_counter()
            p = subprocess.Popen(["/usr/bin/time", "-v", "-o", str(tf), *cmd], stdout=fo, stderr=fe, start_new_session=True)
            killer = threading.Timer(timeout, lambda: os.killpg(p.pid, signal.SIGKILL))
            killer.start()
            code = p.wait()
            wall = time.perf_counter() - t0
            killer.cancel()
        tv = tf.read_text(errors="replace") if tf.exists() else ""
        rss, elapsed = parse_time_v(tv)
        cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", tv))
        return Run(wall, rss, code, elapsed, out.read_text(errors="replace"), err.read_text(errors="replace"), cpu)


def bench(cmd: list[str], runs: int, timeout: float) -> dict:
    rs = [run_once(cmd, timeout) for _ in range(runs)]
    last = rs[-1]
    return {
        "cmd": [Path(cmd[0]).name, *cmd[1:-1], "WHEEL"],
        "wall_median_s": round(statistics.median(r.wall_s for r in rs), 4),
        "wall_min_s": round(min(r.wall_s for r in rs), 4),
        "rss_max_mib": round(max(r.rss_kib for r in rs) / 1024, 1),
        "exit": last.exit,
        "runs": [{"wall_s": round(r.wall_s, 4), "rss_kib": r.rss_kib, "exit": r.exit, "time_elapsed": r.time_elapsed} for r in rs],
        "_out": last.stdout,
        "_err": last.stderr,
    }


def last_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:160] if lines else ""


def judge_pipwall(res: dict) -> None:
    try:
        reports = json.loads(res["_out"])["reports"]
        rep = reports[0]
        res["verdict"] = rep["verdict"]
        codes = sorted({f["code"] for f in rep.get("findings", [])})
        res["findings"] = len(rep.get("findings", []))
        res["detail"] = ",".join(codes)
    except (ValueError, KeyError, IndexError, TypeError):
        res["verdict"] = "error"
        res["detail"] = f"exit {res['exit']}: {last_line(res['_err']) or 'no JSON report'}"


def judge_abi3audit(res: dict) -> None:
    res["verdict"] = {0: "pass", 1: "fail"}.get(res["exit"], "error")
    violations = mismatches = objects = 0
    try:
        for spec in json.loads(res["_out"])["specs"].values():
            for obj in spec.get("wheel") or []:
                objects += 1
                r = obj["result"]
                violations += len(r.get("non_abi3_symbols", []))
                mismatches += 0 if r.get("is_abi3_baseline_compatible", True) else 1
        res.update(objects=objects, violations=violations, mismatches=mismatches)
        res["detail"] = f"{objects} obj, {violations} violations, {mismatches} mismatches"
    except (ValueError, KeyError, TypeError, AttributeError):
        res["detail"] = last_line(res["_err"]) or "no JSON report"
        if res["verdict"] != "error":
            res["verdict"] = "error"


def judge_auditwheel(res: dict, e: Entry) -> None:
    try:
        overall = json.loads(res["_out"])["overall_tag"]
    except (ValueError, KeyError, TypeError):
        res["verdict"] = "error"
        res["detail"] = f"exit {res['exit']}: {last_line(res['_err']) or 'no JSON'}"
        return
    res["overall_tag"] = overall
    res["verdict"], res["detail"] = auditwheel_verdict(e, overall)


def short_label(e: Entry) -> str:
    name, ver = e.filename.split("-")[:2]
    _, abis, plats = wheel_tags(e.filename)
    plat = plats[0] + (f"+{len(plats) - 1}" if len(plats) > 1 else "")
    return f"{name} {ver} {abis[0]} {plat}"


def version_of(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        text = (r.stdout or r.stderr).strip()
        m = re.search(r"\d+(\.\d+)+\S*", text)
        return m[0] if m else text.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


# --------------------------------------------------------------------------- output

COLS = [
    ("wheel", "wheel"), ("MB", "size_mb"),
    ("pw s", "pipwall.wall_median_s"), ("pw MiB", "pipwall.rss_max_mib"), ("pw verdict", "pipwall.verdict"),
    ("a3a s", "abi3audit.wall_median_s"), ("a3a MiB", "abi3audit.rss_max_mib"), ("a3a verdict", "abi3audit.verdict"),
    ("aw s", "auditwheel.wall_median_s"), ("aw MiB", "auditwheel.rss_max_mib"), ("aw verdict", "auditwheel.verdict"),
    ("a3a/pw t", "ratios.abi3audit_time"), ("a3a/pw m", "ratios.abi3audit_mem"),
    ("aw/pw t", "ratios.auditwheel_time"), ("aw/pw m", "ratios.auditwheel_mem"),
]  # fmt: skip


LEFT = {i for i, (_, k) in enumerate(COLS) if k == "wheel" or k.endswith(".verdict")}


def cell(row: dict, key: str) -> str:
    v: object = row
    for k in key.split("."):
        v = v.get(k) if isinstance(v, dict) else None
    if v is None:
        return "-"
    if key.startswith("ratios."):
        return f"{v:.1f}x"
    if key.endswith("wall_median_s"):
        return f"{v:.3f}"
    if key.endswith(".verdict"):
        tool = key.split(".")[0]
        t = row[tool]
        if v == "pass" and tool == "auditwheel":
            return t.get("overall_tag", "pass").replace("_x86_64", "")
        if v == "fail" and tool == "abi3audit" and "violations" in t:
            return f"fail {t['violations']}V/{t['mismatches']}M"
        if v == "fail" and tool == "auditwheel":
            return "MISTAG " + t.get("overall_tag", "").replace("_x86_64", "")
        if v == "fail" and tool == "pipwall":
            return f"fail {t.get('detail', '')}"[:24]
        return str(v)
    return str(v)


def render(rows: list[dict], markdown: bool) -> str:
    table = [[h for h, _ in COLS]] + [[cell(r, k) for _, k in COLS] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |", "|" + "|".join("---" if i in LEFT else "---:" for i in range(len(COLS))) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in table[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in table) for i in range(len(COLS))]
    fmt = lambda r: "  ".join(c.ljust(w) if i in LEFT else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(table[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in table[1:]])


# --------------------------------------------------------------------------- main


BIG_NAME = "big-1.0-cp35-cp35m-manylinux_2_17_x86_64.whl"


def make_big_wheel(source: Path) -> Path:
    """A ~450 MB wheel (~650 MB inflated) for the memory goal: six 60 MB incompressible data
    files and four copies of the largest ELF of `source`, with a correct RECORD. Built once."""
    import base64

    out = CACHE / "big" / BIG_NAME
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as z:
        so = max((i for i in z.infolist() if i.filename.endswith(".so")), key=lambda i: i.file_size)
        so_bytes = z.read(so)
    chunk = os.urandom(1 << 20)
    files = [(f"big/data{k}.bin", chunk * 60) for k in range(6)]
    files += [(f"big/lib{k}.so", so_bytes) for k in range(4)]
    files.append(("big/__init__.py", b""))
    dist = "big-1.0.dist-info"
    files.append((f"{dist}/METADATA", b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n"))
    files.append((f"{dist}/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp35-cp35m-manylinux_2_17_x86_64\n"))
    rows = []
    for path, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}\n")
    rows.append(f"{dist}/RECORD,,\n")
    files.append((f"{dist}/RECORD", "".join(rows).encode()))
    tmp = out.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as w:
        for path, data in files:
            w.writestr(path, data)
    tmp.rename(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipwall", type=Path, default=REPO / "target" / "release" / "pipwall", help="pipwall binary (default: target/release/pipwall)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="project names (or filename substrings) to keep")
    ap.add_argument("--runs", type=int, default=3, help="runs per tool and wheel (default 3)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per single run (default 600)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--list", type=Path, default=WHEEL_LIST, help="wheel list (default bench/wheels.txt)")
    ap.add_argument("--no-big", action="store_true", help="skip the synthetic ~450 MB wheel (pipwall's memory goal)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="where to write the JSON results (default bench/.cache/audit-results.json)")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    CACHE.mkdir(parents=True, exist_ok=True)
    ensure_time()
    ensure_venv()

    pipwall = args.pipwall.resolve()
    have_pipwall = pipwall.is_file() and os.access(pipwall, os.X_OK)
    if not have_pipwall:
        log(f"pipwall binary not found at {pipwall}: pipwall is skipped, peers still run")
    elif subprocess.run([str(pipwall), "audit", "--help"], capture_output=True).returncode != 0:
        have_pipwall = False
        log(f"{pipwall} has no 'audit' subcommand (stale build?): pipwall is skipped, peers still run")

    entries = select(read_list(args.list), args.only)
    if not entries:
        log("no wheel matches --only")
        return 2
    log(f"fetching {len(entries)} wheel(s) into {WHEELS.relative_to(REPO)}")
    for e in entries:
        download(e)
        if e.problem:
            log(f"  SKIP {e.req} {e.platform}: {e.problem}" + (" (optional)" if e.optional else ""))

    a3a, aw = str(venv_bin("abi3audit")), str(venv_bin("auditwheel"))
    rows, skipped = [], []
    for e in entries:
        if e.path is None:
            skipped.append({"spec": e.spec(), "problem": e.problem, "optional": e.optional})
            continue
        row: dict = {
            "wheel": short_label(e),
            "file": e.filename,
            "sha256": e.sha256,
            "spec": e.spec(),
            "size_bytes": e.path.stat().st_size,
            "size_mb": round(e.path.stat().st_size / 1e6, 1),
        }
        w = str(e.path)
        log(f"{e.filename}")
        if have_pipwall:
            row["pipwall"] = bench([str(pipwall), "audit", "--format", "json", w], args.runs, args.timeout)
            judge_pipwall(row["pipwall"])
        run_a3a, why = wants_abi3audit(e)
        if run_a3a:
            row["abi3audit"] = bench([a3a, "--report", w], args.runs, args.timeout)
            row["abi3audit"]["why"] = why
            judge_abi3audit(row["abi3audit"])
        if is_linux(e):
            row["auditwheel"] = bench([aw, "show", "--json", w], args.runs, args.timeout)
            judge_auditwheel(row["auditwheel"], e)
        ratios = {}
        pw = row.get("pipwall")
        for peer in ("abi3audit", "auditwheel"):
            p = row.get(peer)
            if pw and p and pw["verdict"] in ("pass", "fail") and pw["wall_median_s"] > 0 and pw["rss_max_mib"] > 0:
                ratios[f"{peer}_time"] = round(p["wall_median_s"] / pw["wall_median_s"], 2)
                ratios[f"{peer}_mem"] = round(p["rss_max_mib"] / pw["rss_max_mib"], 2)
        row["ratios"] = ratios
        for tool in ("pipwall", "abi3audit", "auditwheel"):
            if tool in row:
                t = row[tool]
                log(f"  {tool:10} {t['wall_median_s']:8.3f} s {t['rss_max_mib']:7.1f} MiB  exit {t['exit']}  {t['verdict']}: {t.get('detail', '')}")
                del t["_out"], t["_err"]
        rows.append(row)

    big = None
    tf = [e for e in entries if e.path is not None and e.filename.startswith("tensorflow-")]
    if have_pipwall and not args.no_big and tf:
        path = make_big_wheel(tf[0].path)
        log(f"{path.name} (synthetic, {path.stat().st_size / 1e6:.0f} MB; pipwall only: the memory goal)")
        big = bench([str(pipwall), "audit", "--format", "json", str(path)], args.runs, args.timeout)
        judge_pipwall(big)
        del big["_out"], big["_err"]
        big["size_mb"] = round(path.stat().st_size / 1e6, 1)
        log(f"  pipwall    {big['wall_median_s']:8.3f} s {big['rss_max_mib']:7.1f} MiB  {big['verdict']}")

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "runs": args.runs,
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version()},
        "wall": "median of runs, monotonic clock around /usr/bin/time -v (includes its ~1 ms exec)",
        "rss": "max over runs of time(1) 'Maximum resident set size'",
        "versions": {
            "pipwall": version_of([str(pipwall), "--version"]) if have_pipwall else None,
            "abi3audit": version_of([a3a, "--version"]),
            "auditwheel": version_of([aw, "--version"]),
        },
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"meta": meta, "wheels": rows, "skipped": skipped, "big": big}, indent=2) + "\n")
    print(render(rows, args.markdown))
    if big:
        print(f"synthetic {big['size_mb']} MB wheel (pipwall only): {big['wall_median_s']:.2f} s, peak {big['rss_max_mib']:.1f} MiB, {big['verdict']}")
    for s in skipped:
        print(f"skipped: {s['spec']}: {s['problem']}")
    log(f"results: {args.results}")
    required_missing = [s for s in skipped if not s["optional"]]
    return 1 if required_missing else 0


if __name__ == "__main__":
    sys.exit(main())
