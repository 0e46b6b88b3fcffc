#!/usr/bin/env python3
"""Fails when the crate's modules import each other in a cycle.

Reads src/ (standard library only): every `crate::a::b` and `super::x` path outside a file's
`#[cfg(test)] mod tests` (inline or in a `tests.rs` of its own), resolved to the longest module it names, gives an edge between the
two modules' first DEPTH segments (1: top-level modules such as `serve` and `policy`; 2: also
their children such as `policy::config`). A parent using its own children is structure, not a
dependency, and is ignored. Strongly connected components of more than one module are printed.

Usage: python3 tools/check_cycles.py [DEPTH ...]   (default: 1 2)
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")
GROUP = re.compile(r"\b(crate|super)::\{([^}]*)\}")


def modules():
    out = {}
    for d, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                parts = os.path.relpath(p, ROOT)[:-3].split(os.sep)
                # A test module in a file of its own, like one inline, is not part of the graph.
                if parts[-1] == "tests":
                    continue
                if parts in (["lib"], ["main"]):
                    parts = []
                text = open(p, encoding="utf-8").read()
                cut = text.find("#[cfg(test)]\nmod tests")
                out[tuple(parts)] = text if cut < 0 else text[:cut]
    return out


def edges(mods, depth):
    known = set(mods)
    graph = {}
    for m, text in mods.items():
        refs = [(k, rest.split("::")[1:]) for k, rest in PATH.findall(text)]
        for k, inner in GROUP.findall(text):
            for item in inner.split(","):
                item = item.strip()
                if item:
                    refs.append((k, re.split(r"::|\s", item)))
        for kind, rest in refs:
            base = [] if kind == "crate" else list(m[:-1])
            target = base + [s for s in rest if s]
            best = next((tuple(target[:n]) for n in range(len(target), 0, -1)
                         if tuple(target[:n]) in known), None)
            if best is None:
                continue
            a, b = m[:depth], best[:depth]
            if a and b and a != b and b != a[:len(b)] and a != b[:len(a)]:
                graph.setdefault(a, set()).add(b)
    return graph


def cycles(graph):
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted("::".join(c) for c in comp))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def main():
    depths = [int(a) for a in sys.argv[1:]] or [1, 2]
    mods = modules()
    bad = False
    for depth in depths:
        for comp in cycles(edges(mods, depth)):
            bad = True
            print(f"import cycle (depth {depth}): {' <-> '.join(comp)}")
    if bad:
        sys.exit(1)
    print(f"no import cycles among {len(mods)} modules")


if __name__ == "__main__":
    main()
