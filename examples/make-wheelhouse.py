#!/usr/bin/env python3
"""Writes the example wheelhouse that `pipwall serve` fronts when no upstream is given.

Deterministic (fixed timestamps), standard library only. Projects:
  demo       1.0 and 1.1 as wheels, 1.2 as an sdist only (pipwall hides 1.2), and 1.3 as a
             wheel whose module was changed after its RECORD was written (its audit fails)
  sdistonly  1.0 as an sdist only (pipwall hides the whole project's files)
"""
import base64, gzip, hashlib, io, os, tarfile, zipfile

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wheelhouse")
DATE = (2024, 1, 1, 0, 0, 0)


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel(name, version, module_text, shipped_text=None):
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": module_text.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: pipwall example\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: pipwall-example\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(record_line(p, d) for p, d in files.items()) + f"\n{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    if shipped_text is not None:
        # The archive carries other bytes than RECORD vouches for: tampered after the build.
        files[f"{name}/__init__.py"] = shipped_text.encode()
    out = os.path.join(HERE, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(zipfile.ZipInfo(path, DATE), data)


def sdist(name, version):
    setup = (
        "raise SystemExit('pipwall example: this setup.py must never run')\n"
    ).encode()
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    buf = io.BytesIO()
    # gzip's own header carries a timestamp too: fix it so the bytes never change.
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(
        fileobj=gz, mode="w", format=tarfile.PAX_FORMAT
    ) as t:
        for path, data in {"setup.py": setup, "PKG-INFO": pkg_info}.items():
            info = tarfile.TarInfo(f"{name}-{version}/{path}")
            info.size, info.mtime = len(data), 1704067200
            t.addfile(info, io.BytesIO(data))
    with open(os.path.join(HERE, f"{name}-{version}.tar.gz"), "wb") as f:
        f.write(buf.getvalue())


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    wheel("demo", "1.0", "VERSION = '1.0'\n")
    wheel("demo", "1.1", "VERSION = '1.1'\n")
    sdist("demo", "1.2")
    wheel("demo", "1.3", "VERSION = '1.3'\n", shipped_text="VERSION = '1.3'\nimport os  # added later\n")
    sdist("sdistonly", "1.0")
