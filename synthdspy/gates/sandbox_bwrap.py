"""The bubblewrap command around the ``code_tests`` harness, and whether it works here.

Inside the sandbox (``bwrap --unshare-all --die-with-parent --new-session --clearenv``): its own
user, PID, network (loopback only, no route out), IPC, UTS and cgroup namespaces; a read-only root
holding only the Python interpreter, its standard library and shared library, the system's shared
libraries (``/usr/lib``, ``/lib*``), the harness scripts in ``/sandbox`` and, with
``site_packages``, the virtual environment (or site-packages); a private ``/proc`` and ``/dev``
(read-only, with a small ``/dev/shm``); and one writable tmpfs, ``/box`` (also ``/tmp``, unless a
bound path lies under ``/tmp``, ``TMPDIR``, ``HOME`` and the working directory), of limited size.
No ``/etc``, no ``/home`` or ``/root``, no shell or other program. When bubblewrap dies, the
kernel ends every process of the sandbox's PID namespace.

Run as root, the command drops to the unprivileged uid and gid 65534 (``setpriv --reuid=65534
--regid=65534 --clear-groups``) before bubblewrap starts, so the sandbox holds no capability and
its files belong to nobody. Bind sources that uid cannot reach (a Python under ``/root``) are first
bind-mounted onto mount points in the run's own directory, in a private mount namespace
(``unshare --mount``) that disappears with the run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HARNESS = tuple(Path(__file__).with_name(name) for name in (
    "sandbox_boot.py", "sandbox_remote.py", "sandbox_wire.py", "sandbox_worker.py"))
PYCACHE = HARNESS[0].parent / "__pycache__"
LAUNCH = "import sys; sys.path.insert(0, {scripts!r}); from {module} import main; sys.exit(main(sys.argv))"
INSIDE = "/sandbox"
BOX = "/box"
NOBODY = 65534
SHM_BYTES = 8 * 2**20
LIBRARY_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/lib", "/lib64", "/lib32", "/libx32")
STAGE_SCRIPT = 'set -e; while [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
TOOLS_AS_ROOT = ("unshare", "sh", "mount", "setpriv")
INSTALL_HINT = "install it (`apt-get install bubblewrap`)"


def _hops(path: str) -> tuple[list[tuple[str, str]], str]:
    """The symlinks met on the way from ``path`` to the file it names, as (link, target), and the file."""
    links: list[tuple[str, str]] = []
    path = os.path.abspath(path)
    while os.path.islink(path) and len(links) < 40:
        target = os.readlink(path)
        links.append((path, target))
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    return links, os.path.realpath(path)


def _interpreter(site_packages: bool) -> str:
    """The interpreter path the solution process runs: the virtual environment's with site-packages
    (so that it finds ``pyvenv.cfg``), else the base interpreter."""
    return sys.executable if site_packages else os.path.realpath(sys.executable)


def python_paths(site_packages: bool) -> tuple[list[str], list[tuple[str, str]]]:
    """The host paths the sandbox shows read-only at the same place, and the symlinks it recreates:
    the interpreter, its standard library (with ``lib-dynload``) and shared library, the system's
    shared libraries, with ``site_packages`` the virtual environment or site-packages."""
    links, binary = _hops(_interpreter(site_packages))
    paths = [binary, os.path.dirname(os.path.realpath(os.__file__))]
    paths += [p for p in [sysconfig.get_config_var("DESTSHARED")] if p and os.path.isdir(p)]
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        library = os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME"))
        paths += [os.path.realpath(library)] if os.path.exists(library) else []
    if site_packages:
        venv = sys.prefix != sys.base_prefix
        paths += [sys.prefix] if venv else [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    for directory in LIBRARY_DIRS:
        if os.path.islink(directory):
            links.append((directory, os.readlink(directory)))
        elif os.path.isdir(directory):
            paths.append(directory)
    kept: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths}):
        if not any(path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept, [(link, target) for link, target in links if not any(link.startswith(k + "/") for k in kept)]


@functools.cache
def compile_harness() -> None:
    """Write the harness modules' bytecode to their ``__pycache__`` (once), so that the sandbox, which
    sees that directory read-only, loads them without compiling on every start; where the package
    directory is read-only (an installed package has its bytecode already), they are left as they are."""
    for module in HARNESS:
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(str(module), doraise=True)


def harness_command(site_packages: bool, scripts: str) -> tuple[list[str], list[str]]:
    """(command of the harness, command of the solution process), their modules in directory ``scripts``."""
    compile_harness()
    worker = [_interpreter(site_packages), "-I", "-B", "-u", *([] if site_packages else ["-S"])]  # -u: it is killed
    return ([os.path.realpath(sys.executable), "-I", "-B", "-S", "-c",
             LAUNCH.format(scripts=scripts, module="sandbox_boot")],
            [*worker, "-c", LAUNCH.format(scripts=scripts, module="sandbox_worker")])


def _hidden_from_nobody(path: str) -> str | None:
    """The part of ``path`` uid 65534 cannot reach (the entry below the first directory on the way
    that it may not search), or None when it can reach all of it."""
    parent = "/"
    for part in Path(path).parts[1:]:
        status = os.stat(parent)
        if not (status.st_mode & 0o001 or status.st_uid == NOBODY):
            return os.path.join(parent, part)
        parent = os.path.join(parent, part)
    return None


def wrap(command: list[str], run_dir: Path, box_bytes: int, site_packages: bool) -> list[str]:
    """``command`` run inside bubblewrap (see the module doc); ``run_dir`` is a fresh directory of
    this run that holds the staging mount points when running as root."""
    paths, links = python_paths(site_packages)
    binds = [(p, p) for p in paths] + [(str(h), f"{INSIDE}/{h.name}") for h in HARNESS]
    binds += [(str(PYCACHE), f"{INSIDE}/__pycache__")] if PYCACHE.is_dir() else []
    as_root = os.geteuid() == 0
    stages: dict[str, str] = {}  # part hidden from uid 65534 -> its mount point in run_dir
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for source, dest in binds:
        hidden = _hidden_from_nobody(source) if as_root else None
        if hidden is not None:
            if hidden not in stages:
                stages[hidden] = str(run_dir / f"stage{len(stages)}")
                if os.path.isdir(hidden):
                    Path(stages[hidden]).mkdir()
                else:
                    Path(stages[hidden]).touch()
            source = stages[hidden] + source[len(hidden):]
        args += ["--ro-bind", source, dest]
    for link, target in links:
        args += ["--symlink", target, link]
    # /tmp is the box, unless a bound path lies under /tmp (a virtual environment or checkout there):
    # then /tmp holds that read-only path and TMPDIR alone points at the box
    under_tmp = any(dest == "/tmp" or dest.startswith("/tmp/") for _, dest in binds)
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev", "--size", str(SHM_BYTES), "--tmpfs",
             "/dev/shm", "--size", str(box_bytes), "--tmpfs", BOX, *([] if under_tmp else ["--symlink", BOX, "/tmp"]),
             "--chdir", BOX]
    env = {"HOME": BOX, "TMPDIR": BOX, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name, value in env.items():
        args += ["--setenv", name, value]
    args += ["--remount-ro", "/", "--", *command]
    if not as_root:
        return args
    os.chown(run_dir, NOBODY, NOBODY)
    args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *args]
    if not stages:
        return args
    mounts = [path for pair in stages.items() for path in pair]
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", STAGE_SCRIPT, "sh", *mounts, "--",
            *args]


@functools.cache
def bubblewrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox a Python process here (checked once, by starting one), or None."""
    missing = [tool for tool in ("bwrap", *(TOOLS_AS_ROOT if os.geteuid() == 0 else ())) if not shutil.which(tool)]
    if missing:
        return f"{' and '.join(missing)} not found on PATH"
    with tempfile.TemporaryDirectory(prefix="synthdspy-bwrap-check-") as run_dir:
        command = wrap([os.path.realpath(sys.executable), "-I", "-S", "-c", "pass"], Path(run_dir), 2**20, False)
        try:
            done = subprocess.run(command, capture_output=True, timeout=30, check=False, env=minimal_env())
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bwrap could not start: {exc}"
    if done.returncode != 0:
        return f"bwrap could not start a sandbox: {done.stderr.decode(errors='replace').strip()[:300]}"
    return None


def minimal_env() -> dict[str, str]:
    """The environment of the sandbox's launcher: a PATH and nothing of this process's (no secrets;
    bubblewrap's PID 1 keeps the environment it was started with)."""
    return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8"}
