#!/usr/bin/env python3
"""Finds import circles between the modules of Rust crates: a module that imports
(`use`, or a `crate::`/`super::`/`self::` path in code) a module that imports it back,
directly or through others.

    python3 scripts/module_cycles.py crates/py2p-wire crates/py2p-testkit xtask

Prints every circle (a strongly connected set of modules, with the imports inside it) and
exits 1 if there is one. Edges are between files' modules; `#[cfg(test)]` modules, comments
and string literals are skipped (a test module importing its parent is no circle); a name
imported through a `pub use` re-export counts as an import of the module that defines it,
and `crate::NAME` of a `#[macro_export]` macro as an import of the module that defines the
macro. Paths into other crates are ignored. A text scan, not a compiler: good enough to
keep our own crates honest, not a general tool.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_code(text):
    """The text without comments, string and char literals (kept as empty quotes)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""')
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4] + "  "):
            m = re.match(r"'(\\.|[^\\'])'", text[i:])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_modules(code):
    """Removes `#[cfg(test)] mod NAME { ... }` blocks."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+" + IDENT + r"\s*\{", code)
        if not m:
            return code
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        code = code[:m.start()] + code[j + 1:]


def expand_use(tree):
    """`a::{b, c::{d, e}, self}` -> [[a, b], [a, c, d], [a, c, e], [a, self]] (callers drop
    `as` aliases first; a trailing `self` or `*` resolves to the module before it)."""
    tree = re.sub(r"\s+", "", tree)

    def parse(s, i, prefix):
        paths, cur = [], []
        while i < len(s):
            if s.startswith("::{", i) or s[i] == "{":
                i += 3 if s[i] == ":" else 1
                sub, i = parse(s, i, prefix + cur)
                paths += sub
                cur = None
            elif s[i] == "}":
                if cur:
                    paths.append(prefix + cur)
                return paths, i + 1
            elif s[i] == ",":
                if cur:
                    paths.append(prefix + cur)
                cur, i = [], i + 1
            elif s.startswith("::", i):
                i += 2
            else:
                m = re.match(r"(" + IDENT + r"|\*)", s[i:])
                if not m:
                    i += 1
                    continue
                if cur is None:
                    cur = []
                cur.append(m.group(1))
                i += len(m.group(0))
        if cur:
            paths.append(prefix + cur)
        return paths, i

    return parse(tree, 0, [])[0]


class Crate:
    def __init__(self, root_dir):
        self.dir = root_dir
        src = os.path.join(root_dir, "src")
        root = next(f for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f)))
        self.files = {}  # module path (tuple) -> file
        self.load(os.path.join(src, root), ())
        self.code = {m: drop_test_modules(strip_code(open(f).read())) for m, f in self.files.items()}
        self.reexports = {}  # (module, name) -> absolute path
        self.macros = {}  # macro name -> module
        for m, f in self.files.items():
            raw = strip_code(open(f).read())
            for mm in re.finditer(r"#\[macro_export\]\s*macro_rules!\s*(" + IDENT + ")", raw):
                self.macros[mm.group(1)] = m
        for m in self.files:
            for vis, tree in re.findall(r"(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", self.code[m]):
                if not vis:
                    continue
                for path in expand_use(re.sub(r"\s+as\s+" + IDENT, "", tree)):
                    if path and path[-1] not in ("*", "self"):
                        self.reexports[(m, path[-1])] = self.absolute(m, path)

    def load(self, path, module):
        self.files[module] = path
        text = drop_test_modules(strip_code(open(path).read()))
        base = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in ("lib", "main", "mod"):
            base = os.path.join(base, stem)
        for name in re.findall(r"(?:^|\n)\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", text):
            for cand in (os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")):
                if os.path.exists(cand):
                    self.load(cand, module + (name,))
                    break

    def absolute(self, module, path):
        """A path as written in `module`, made absolute (a tuple from the crate root), or None
        for another crate's path."""
        path = list(path)
        if not path:
            return None
        if path[0] == "crate":
            return tuple(path[1:])
        cur = list(module)
        if path[0] in ("self", "super"):
            while path and path[0] in ("self", "super"):
                if path.pop(0) == "super":
                    cur = cur[:-1]
            return tuple(cur + path)
        # A child module named at the start of a `use` path (2018 edition: relative).
        if tuple(cur + [path[0]]) in self.files:
            return tuple(cur + path)
        return None

    def resolve(self, path, seen=()):
        """The module that defines what an absolute path names."""
        if path is None:
            return None
        if len(path) == 1 and path[0] in self.macros:
            return self.macros[path[0]]
        for k in range(len(path), -1, -1):
            mod = tuple(path[:k])
            if mod in self.files:
                rest = path[k:]
                target = self.reexports.get((mod, rest[0])) if rest else None
                if target is not None and (mod, rest[0]) not in seen:
                    return self.resolve(target + tuple(rest[1:]), seen + ((mod, rest[0]),)) or mod
                return mod
        return None

    def edges(self):
        out = {m: set() for m in self.files}
        for m, code in self.code.items():
            paths = []
            for tree in re.findall(r"\buse\s+([^;]+);", code):
                paths += expand_use(re.sub(r"\s+as\s+" + IDENT, "", tree))
            body = re.sub(r"\buse\s+[^;]+;", "", code)
            # Paths in code: `crate::`, `super::`, `self::` or a child module's name first.
            for p in re.findall(r"(?<![\w:])(" + IDENT + r"(?:\s*::\s*" + IDENT + ")+)", body):
                paths.append(re.split(r"\s*::\s*", p))
            for p in paths:
                target = self.resolve(self.absolute(m, p))
                if target is not None and target != m:
                    out[m].add(target)
        return out


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def name(crate, module):
    return crate + ("::" + "::".join(module) if module else "")


def main(dirs):
    found = 0
    for d in dirs:
        crate = Crate(d)
        graph = crate.edges()
        label = os.path.basename(os.path.normpath(d))
        comps = cycles(graph)
        n_edges = sum(len(v) for v in graph.values())
        print(f"{label}: {len(graph)} modules, {n_edges} imports, {len(comps)} circle(s)")
        for comp in comps:
            found += 1
            print("  circle:")
            for m in sorted(comp):
                inside = sorted(name(label, t) for t in graph[m] if t in comp)
                print(f"    {name(label, m)} -> {', '.join(inside)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["crates/py2p-wire", "crates/py2p-testkit", "xtask"]))
