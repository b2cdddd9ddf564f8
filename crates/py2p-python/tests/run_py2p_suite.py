"""Runs py2p 0.5.607's own test suite against py2p_rs (or, for reference, against py2p).

py2p's test files are LGPLv3 and ship inside the installed py2p package (py2p/test/), so they
are not copied into this repository: this script copies them from the installed package into
an output directory, changing nothing but where they import from (every rewrite is checked to
have happened exactly as many times as expected), adds conftest.py (the tests that cannot
pass, each with its reason) and runs pytest on them.

    python run_py2p_suite.py [--impl py2p_rs|py2p] [--out DIR] [pytest args...]

Exits with pytest's exit code.
"""

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# The files of py2p 0.5.607's suite this runs, with the sha-256 of each as py2p ships it (so a
# different py2p cannot pass for 0.5.607), and how many import lines each has to rewrite.
SUITE = {
    "test_base.py": ("0639d33ad1aee3287cc067af8e21a8ccfe69192fc4f8cb4765b0a678face7534", 1),
    "test_mesh.py": ("09adad3a41f230ef2c191181cef8cc084a3b1a52fd07800b70508ad3990a8e35", 2),
    "test_sync.py": ("7957e8cbfe3bb35488d4f1b36df45141011b3117197322008221f4135ca0c0bb", 2),
    "test_utils.py": ("1fefbd79cd65629a06e9581fb3670d36ccb9d7ac6a36a79b56e30b1bd940239b", 1),
}

# `from .. import mesh` -> `from IMPL import mesh`; `from ..base import flags` ->
# `from IMPL.base import flags`. Relative imports of the suite's own files stay.
IMPORT = re.compile(r"^from \.\.(\w*) import ", re.M)


def rewrite(text, impl):
    def sub(m):
        module = m.group(1)
        return "from %s%s import " % (impl, "." + module if module else "")
    return IMPORT.subn(sub, text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="py2p_rs", choices=["py2p_rs", "py2p"])
    parser.add_argument("--out", default=None,
                        help="where to write the suite (default: a directory under the "
                             "current directory's target/)")
    args, pytest_args = parser.parse_known_args()

    import py2p
    source = os.path.join(os.path.dirname(py2p.__file__), "test")
    if getattr(py2p, "__version__", None) != "0.5.607":
        sys.exit("py2p 0.5.607 is needed (found %s)" % getattr(py2p, "__version__", "?"))
    out = os.path.abspath(args.out or os.path.join("target", "py2p-suite-" + args.impl))
    package = os.path.join(out, "py2p_suite")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(package)
    for name, (sha256, imports) in sorted(SUITE.items()):
        with open(os.path.join(source, name), "rb") as f:
            raw = f.read()
        if hashlib.sha256(raw).hexdigest() != sha256:
            sys.exit("%s is not the file py2p 0.5.607 ships (sha-256 differs)" % name)
        new, n = rewrite(raw.decode("utf-8"), args.impl)
        if n != imports:
            sys.exit("%s: expected %d relative imports to rewrite, found %d"
                     % (name, imports, n))
        with open(os.path.join(package, name), "w", encoding="utf-8", newline="") as f:
            f.write(new)
        print("%s: py2p 0.5.607's file, %d import lines now from %s" % (name, n, args.impl))
    with open(os.path.join(package, "__init__.py"), "w") as f:
        f.write("")
    shutil.copy(os.path.join(HERE, "suite_conftest.py"), os.path.join(out, "conftest.py"))
    env = dict(os.environ, PY2P_SUITE_IMPL=args.impl)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rxXfE", "--tb=native",
           "py2p_suite"] + pytest_args
    print("$ (cd %s && %s)" % (out, " ".join(cmd)), flush=True)
    return subprocess.call(cmd, cwd=out, env=env)


if __name__ == "__main__":
    sys.exit(main())
