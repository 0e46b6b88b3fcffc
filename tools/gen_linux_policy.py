#!/usr/bin/env python3
"""Generates src/audit/linux_policy.rs: auditwheel's manylinux and musllinux policies as static tables.

Reads (standard library only):
  DATA/auditwheel-manylinux-policy.json  pypa/auditwheel src/auditwheel/policy/manylinux-policy.json
  DATA/auditwheel-musllinux-policy.json  pypa/auditwheel src/auditwheel/policy/musllinux-policy.json
The `linux` catch-all (priority 0) is left out: it allows everything, so it is no policy to check.

Before writing anything the data must pass the check auditwheel runs when it loads these files
(`_validate_pep600_compliance`), made a little stricter: walking from the most compatible policy
(highest priority) to the least, every whitelist and every per-arch symbol-version set must contain
all that the older policies allowed, and a prefix an arch constrained once must stay constrained.
The Rust lookups rely on more than that, so this also checks: names are `<family>_<major>_<minor>`,
versions rise strictly as priority falls, aliases are unique, blacklisted libraries are whitelisted.

Every list is sorted in byte order so the Rust side can binary-search; identical lists are written
once as a named static (named after the first policy that uses them).

Usage: python3 tools/gen_linux_policy.py [--data DATA_DIR]   (default: ../shared/data)
"""
import argparse, hashlib, json, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "src", "audit", "linux_policy.rs"))
SOURCES = (("auditwheel-manylinux-policy.json", "manylinux", "Glibc"),
           ("auditwheel-musllinux-policy.json", "musllinux", "Musl"))
NAME_RE = re.compile(r"^(manylinux|musllinux)_(\d+)_(\d+)$")
U16_MAX = 0xFFFF


class DataError(Exception):
    pass


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_monotone(family, policies):
    """auditwheel's invariant, over policies sorted from highest to lowest priority."""
    whitelist = set()
    seen = {}  # arch -> prefix -> union of versions allowed by the older policies
    for p in policies:
        missing = whitelist - set(p["lib_whitelist"])
        if missing:
            raise DataError(f"{p['name']}: whitelist drops {sorted(missing)} allowed by an older {family} policy")
        whitelist |= set(p["lib_whitelist"])
        for arch, prefixes in p["symbol_versions"].items():
            older = seen.setdefault(arch, {})
            dropped = set(older) - set(prefixes)
            if dropped:
                raise DataError(f"{p['name']}_{arch}: no longer constrains {sorted(dropped)}")
            for prefix, versions in prefixes.items():
                missing = older.get(prefix, set()) - set(versions)
                if missing:
                    raise DataError(f"{p['name']}_{arch}: {prefix} drops {sorted(missing)} allowed by an older policy")
                older.setdefault(prefix, set()).update(versions)


def load(path, family):
    with open(path) as f:
        raw = json.load(f)
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON list of policies")
    policies = []
    for p in raw:
        if p["name"] == "linux":
            if p["priority"] != 0:
                raise DataError(f"{path}: `linux` should have priority 0, has {p['priority']}")
            continue
        m = NAME_RE.match(p["name"])
        if not m or m.group(1) != family:
            raise DataError(f"{path}: unexpected policy name {p['name']!r}")
        major, minor = int(m.group(2)), int(m.group(3))
        if not (0 < p["priority"] <= U16_MAX and major <= U16_MAX and minor <= U16_MAX):
            raise DataError(f"{p['name']}: priority or version out of range")
        for lib in p["blacklist"]:
            if lib not in p["lib_whitelist"]:
                raise DataError(f"{p['name']}: blacklist for {lib}, which is not whitelisted")
        for arch, prefixes in p["symbol_versions"].items():
            for prefix, versions in prefixes.items():
                if "_" in prefix or not prefix:
                    raise DataError(f"{p['name']}_{arch}: prefix {prefix!r} cannot come from a split at the first `_`")
                if len(set(versions)) != len(versions):
                    raise DataError(f"{p['name']}_{arch}: duplicate {prefix} versions")
        policies.append(dict(p, version=(major, minor)))
    policies.sort(key=lambda p: -p["priority"])
    for older, newer in zip(policies, policies[1:]):
        if older["priority"] == newer["priority"]:
            raise DataError(f"{older['name']} and {newer['name']} share priority {older['priority']}")
        if not older["version"] < newer["version"]:
            raise DataError(f"{newer['name']} has a lower priority than {older['name']} but is not newer")
    check_monotone(family, policies)
    return policies


class Statics:
    """Writes each distinct list once; later users refer to it by name."""

    def __init__(self):
        self.by_content = {}
        self.items = []

    def ref(self, name, values):
        values = tuple(sorted(values))
        if not values:
            return "&[]"
        if values not in self.by_content:
            ident = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()
            self.by_content[values] = ident
            self.items.append((ident, values))
        return self.by_content[values]

    def lines(self):
        out = []
        for ident, values in self.items:
            out.append(f"static {ident}: &[&str] = &[")
            out.append("    " + ", ".join(json.dumps(v) for v in values) + ",")
            out.append("];")
        return out


def render_policy(p, libc, statics):
    pname = p["name"]
    lines = [
        "    Policy {",
        f"        name: {json.dumps(pname)},",
        f"        aliases: &[{', '.join(json.dumps(a) for a in sorted(p['aliases']))}],",
        f"        priority: {p['priority']},",
        f"        libc: Libc::{libc},",
        f"        version: ({p['version'][0]}, {p['version'][1]}),",
        "        arches: &[",
    ]
    for arch in sorted(p["symbol_versions"]):
        prefixes = p["symbol_versions"][arch]
        pairs = [f"({json.dumps(pre)}, {statics.ref(f'{pre}_{pname}_{arch}', prefixes[pre])})"
                 for pre in sorted(prefixes)]
        lines.append(f"            ArchVersions {{ arch: {json.dumps(arch)}, prefixes: &[{', '.join(pairs)}] }},")
    lines.append("        ],")
    lines.append(f"        whitelist: {statics.ref(f'whitelist_{pname}', p['lib_whitelist'])},")
    pairs = [f"({json.dumps(lib)}, {statics.ref(f'blacklist_{pname}_{lib}', p['blacklist'][lib])})"
             for lib in sorted(p["blacklist"])]
    lines.append(f"        blacklist: &[{', '.join(pairs)}],")
    lines.append("    },")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("legacy_data", nargs="?", help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = args.legacy_data or args.data
    loaded, header = [], []
    for fname, family, libc in SOURCES:
        path = os.path.join(data, fname)
        try:
            policies = load(path, family)
        except DataError as e:
            sys.exit(f"gen_linux_policy: {e}")
        loaded.append((libc, policies))
        header.append(f"// {fname} (sha256 {sha256(path)})")
    aliases = [a for _, ps in loaded for p in ps for a in p["aliases"]]
    names = {p["name"] for _, ps in loaded for p in ps}
    if len(set(aliases)) != len(aliases) or names & set(aliases):
        sys.exit("gen_linux_policy: an alias is used twice or shadows a policy name")

    statics = Statics()
    body = []
    for libc, policies in loaded:
        for p in policies:
            body.extend(render_policy(p, libc, statics))
    counts = ", ".join(f"{len(ps)} {'manylinux' if libc == 'Glibc' else 'musllinux'}" for libc, ps in loaded)
    lines = [
        "// @generated by tools/gen_linux_policy.py; do not edit by hand.",
        "//",
        "// Facts from pypa/auditwheel's policy files (MIT License), copied in shared/data as",
        header[0] + " and",
        header[1] + ".",
        f"// {counts} policies; the `linux` catch-all (priority 0) is left out. The generator checked",
        "// auditwheel's load-time invariant: each policy allows all that every older one allows.",
        "",
        "use super::libc::Libc;",
        "",
        "/// One policy, for every architecture it covers.",
        "#[derive(Debug)]",
        "pub(super) struct Policy {",
        "    /// Without the architecture: `manylinux_2_17`.",
        "    pub name: &'static str,",
        "    /// Legacy names for the same policy, without the architecture: `manylinux2014`.",
        "    pub aliases: &'static [&'static str],",
        "    /// auditwheel's ranking: higher is older and more compatible.",
        "    pub priority: u16,",
        "    pub libc: Libc,",
        "    /// The libc version in the name: (2, 17) for glibc 2.17, (1, 2) for musl 1.2.",
        "    pub version: (u16, u16),",
        "    /// Sorted by `arch`; an architecture the policy does not cover is absent.",
        "    pub arches: &'static [ArchVersions],",
        "    /// Sorted sonames a wheel may need without shipping them.",
        "    pub whitelist: &'static [&'static str],",
        "    /// Sorted by soname; each symbol list sorted.",
        "    pub blacklist: &'static [(&'static str, &'static [&'static str])],",
        "}",
        "",
        "/// The symbol versions one architecture of a policy allows, by version-name prefix.",
        "#[derive(Debug)]",
        "pub(super) struct ArchVersions {",
        "    pub arch: &'static str,",
        "    /// Sorted by prefix (`CXXABI`, `GCC`, `GLIBC`, …); each version list sorted (byte order,",
        "    /// not numeric: membership is by exact string, as in auditwheel).",
        "    pub prefixes: &'static [(&'static str, &'static [&'static str])],",
        "}",
        "",
        "/// Grouped by libc (manylinux, then musllinux), oldest (highest priority) first within each.",
        "pub(super) static POLICIES: &[Policy] = &[",
        *body,
        "];",
        "",
        *statics.lines(),
    ]
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {counts} policies, {len(statics.items)} shared lists")


if __name__ == "__main__":
    main()
