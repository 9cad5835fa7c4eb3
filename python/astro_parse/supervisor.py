"""The parse supervisor: imports Airflow once, sets it up as the default DAG integrity test does, lists the DAG
files as DagBag would, then forks a few sandboxed workers (one per CPU) that parse one file per task, replaces any
that hang or die, and streams each file's result as a JSON line on the result channel, which is a dedicated file
descriptor or file, never stdout or stderr.

Messages (one JSON object per line, validated on the TypeScript side):
  {"type": "hello", ...}     versions and the effective Airflow settings
  {"type": "listing", ...}   the files DagBag parses, in its order, and the candidate files it skips
  {"type": "file", ...}      one per parsed file, in completion order
  {"type": "done"}           the run finished
  {"type": "fatal", ...}     the run could not go on (for example, Airflow cannot be imported)

A standby (config "standby") is the same sandboxed process started ahead of the next run: it imports Airflow and
what the last run preloaded, runs the warm-up, then waits on a socket in its shared run folder for one job (the
files to skip, the workers, the memory limit) and runs it with that connection as its result channel. It lists and
reads no DAG file before the job arrives, and exits when none comes in time.
"""

import gc
import json
import os
import shutil
import signal
import sys
import time
import traceback

from . import PROTOCOL_VERSION
from . import worker as worker_module
from .paths import relpath
from .preload import import_installed, preload
from .scheduler import Scheduler

class ResultChannel:
    def __init__(self, fd):
        self.fd = fd

    @classmethod
    def open(cls, config):
        if config.get("resultFd") is not None:
            return cls(int(config["resultFd"]))
        return cls(os.open(config["resultFile"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644))

    def send(self, message):
        data = memoryview((json.dumps(message, default=str) + "\n").encode())
        while data:
            try:
                written = os.write(self.fd, data)
            except InterruptedError:
                continue
            data = data[written:]


class _NoChannel:
    """A standby's channel until its job arrives: a failure before then ends it silently (the run that comes for
    it finds it gone and starts a harness of its own, which reports the failure)."""

    fd = -1

    def send(self, message):
        pass


def _clean_sys_path(harness_parent, project_root):
    # `python -c` puts the working directory first on sys.path and the boot code added the harness; DagBag under
    # pytest sees neither. The project root is importable the way the Runtime image makes it (on PYTHONPATH), so
    # `from include.x import y` works; Airflow itself adds the DAGs and plugins folders when it starts.
    sys.path[:] = [p for p in sys.path if p not in ("", harness_parent)]
    if project_root and os.path.abspath(project_root) not in [os.path.abspath(p) for p in sys.path]:
        sys.path.insert(0, project_root)


def _prepare_state(config):
    state_dir = config["stateDir"]
    os.makedirs(state_dir, exist_ok=True)
    os.makedirs(os.path.join(state_dir, "logs"), exist_ok=True)
    home = os.environ.get("HOME")
    if home:
        try:
            os.makedirs(home, exist_ok=True)
        except OSError:
            pass
    template = config.get("dbTemplate")
    if template and os.path.isfile(template):
        shutil.copyfile(template, os.path.join(state_dir, "airflow.db"))
        return True
    return False


def _import_airflow(db_ready, config):
    import airflow
    from airflow import settings
    from airflow.models import Connection, DagBag, Variable  # noqa: F401  (imported as the integrity test does)

    if not db_ready:
        from airflow.utils.db import initdb

        initdb()
        settings.engine.dispose()
        out = config.get("dbTemplateOut")
        if out:
            try:
                tmp = out + ".tmp"
                shutil.copyfile(os.path.join(config["stateDir"], "airflow.db"), tmp)
                os.replace(tmp, out)
            except OSError:
                pass
    return airflow


_WARMUP_DAG = """
import pendulum
try:
    from airflow.sdk import DAG, task
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task
    from airflow.operators.empty import EmptyOperator

with DAG("astro_parse_warm_up", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), schedule="@daily"):
    @task
    def noop(value):
        return value

    EmptyOperator(task_id="start") >> noop(1)
"""


def warm_up(state_dir):
    """Pays Airflow's lazy one-time set-up (ORM mapper configuration, first DAG and operator creation) once in the
    supervisor instead of once per worker. Only a DAG of our own is parsed here, never project code."""
    try:
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
    except Exception:
        pass
    try:
        from airflow.models.dagbag import DagBag

        folder = os.path.join(state_dir, "warm-up")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "astro_parse_warm_up.py")
        with open(path, "w") as dag_file:
            dag_file.write(_WARMUP_DAG)
        bag = DagBag(dag_folder=folder, include_examples=False, collect_dags=False)
        bag.process_file(path, only_if_updated=False)
        for name in [n for n in sys.modules if n.startswith("unusual_prefix_")]:
            sys.modules.pop(name, None)
    except Exception:
        pass


def _set_child_subreaper():
    """Orphans of DAG code (double forks) become our children, so they can be found and ended."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass


def _kill_descendants():
    me = str(os.getpid())
    for _ in range(3):
        found = False
        try:
            entries = os.listdir("/proc")
        except OSError:
            return
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found = True
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except OSError:
                    pass
        if not found:
            return
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


def _read_only(root):
    try:
        return bool(os.statvfs(root).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _close_inherited_fds(keep):
    """Whatever file descriptors the caller's process leaked to us (an IPC socket, a log file) are closed before
    any DAG code runs: only stdin, stdout, stderr and the result channel stay open."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = 65536 if limit == resource.RLIM_INFINITY or limit > 65536 else limit
    start = 3
    for fd in sorted(keep) + [limit]:
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1


def _stand_by(standby, config, local_roots, deps):
    """Waits for the job a standby is started for; returns its result channel. Exits when none comes in time."""
    import socket

    import_installed(standby.get("modules") or [], local_roots, float(config.get("preloadTimeoutSeconds", 20)))
    warm_up(config["stateDir"])
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(standby["socket"])
    listener.listen(1)
    ready = standby["readyFile"]
    # The folders' entries as the standby saw them (sha256 of the sorted names, each followed by a NUL: listingHash
    # in src/parse/cache.ts): the run that claims it compares them with its own view; files it compares by ctime.
    listings = {}
    for folder in [config["projectRoot"]] + list(deps["dirs"]):
        listings[folder] = worker_module.listing_hash(folder)
    # Folders of which only some names count (DependencyRecorder.deps): the same hash of those names only.
    partial = [dict(listing, hash=worker_module.listing_hash(listing["path"], listing)) for listing in deps["listings"]]
    with open(ready + ".tmp", "w") as out:
        json.dump({"files": deps["files"], "folders": listings, "listings": partial}, out)
    os.replace(ready + ".tmp", ready)
    listener.settimeout(float(standby["idleSeconds"]))
    try:
        connection, _ = listener.accept()
    except OSError:  # no job in time (socket.timeout is an OSError)
        os._exit(0)
    listener.close()
    try:
        os.unlink(standby["socket"])
    except OSError:
        pass
    connection.settimeout(10)
    line = b""
    while not line.endswith(b"\n") and len(line) < 64 * 1024 * 1024:
        chunk = connection.recv(1 << 16)
        if not chunk:
            os._exit(0)
        line += chunk
    job = json.loads(line)
    connection.settimeout(None)
    return ResultChannel(connection.detach()), {
        "skip": [str(p) for p in job["skip"]],
        "workers": int(job["workers"]),
        "memoryLimitBytes": int(job["memoryLimitBytes"]),
    }


def main(argv):
    config = json.loads(argv[0])
    harness_parent = argv[1] if len(argv) > 1 else None
    _close_inherited_fds([int(config["resultFd"])] if config.get("resultFd") is not None else [])
    _clean_sys_path(harness_parent, config.get("projectRoot"))
    channel = _NoChannel() if config.get("standby") else ResultChannel.open(config)
    gc.disable()  # Imports allocate millions of objects; collecting during them only costs time.
    _set_child_subreaper()
    scheduler = None

    def on_term(signum, frame):
        if scheduler is not None:
            scheduler.kill_all()
        _kill_descendants()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    # What Airflow reads from the project while it starts (airflow.cfg, local settings, modules looked up on
    # its sys.path) decides every file's verdict: the runner re-checks these before reusing cached results.
    track_roots = config.get("trackRoots") or [config["projectRoot"]]
    startup_deps = worker_module.DependencyRecorder(track_roots)
    startup_deps.reset(None, active=True)
    sys.addaudithook(startup_deps.hook)
    try:
        started = time.monotonic()
        db_ready = _prepare_state(config)
        try:
            airflow = _import_airflow(db_ready, config)
        except BaseException:
            channel.send({"type": "fatal", "reason": "airflow-import", "message": traceback.format_exc()})
            os._exit(3)
        from airflow import settings

        from . import listing, mocks

        mocks.install()
        startup_deps.active = False
        import_ms = (time.monotonic() - started) * 1000

        from airflow.utils.file import correct_maybe_zipped

        airflow_home = os.environ.get("AIRFLOW_HOME") or settings.AIRFLOW_HOME
        dags_folder = correct_maybe_zipped(str(settings.DAGS_FOLDER))
        import logging

        logging.getLogger("airflow").disabled = True
        local_roots = [os.path.abspath(r) for r in (config.get("trackRoots") or [])]
        local_roots += [os.path.abspath(dags_folder), os.path.abspath(settings.PLUGINS_FOLDER or dags_folder)]
        deps = startup_deps.deps()
        warmed = False
        if config.get("standby"):
            channel, job = _stand_by(config["standby"], config, local_roots, deps)
            config.update(job)
            warmed = True
        files, skipped, unreadable, discovery = listing.list_dag_files(dags_folder)
        channel.send(
            {
                "type": "hello",
                "protocol": PROTOCOL_VERSION,
                "python": sys.version.split()[0],
                "airflowVersion": getattr(airflow, "__version__", "unknown"),
                "airflowHome": airflow_home,
                "dagsFolder": dags_folder,
                "pluginsFolder": settings.PLUGINS_FOLDER,
                "safeMode": discovery["safeMode"],
                "ignoreSyntax": discovery["ignoreSyntax"],
                "projectReadOnly": _read_only(dags_folder),
                "rootReadOnly": _read_only("/"),
                "dbCreated": not db_ready,
                "startupMs": import_ms,
                "deps": deps,
            }
        )
        channel.send(
            {
                "type": "listing",
                "files": [{"path": p, "relPath": relpath(p, airflow_home)} for p in files],
                "skipped": [dict(s, relPath=relpath(s["path"], airflow_home)) for s in skipped],
                "unreadable": [dict(u, relPath=relpath(u["path"], airflow_home)) for u in unreadable],
            }
        )
        skip = set(config.get("skip") or [])
        to_parse = [p for p in files if p not in skip]
        preloaded = []
        phases = {"startup": import_ms}
        mark = time.monotonic()
        if to_parse and config.get("preload", True):
            preloaded = preload(to_parse, local_roots, float(config.get("preloadTimeoutSeconds", 20)))
        phases["preload"] = (time.monotonic() - mark) * 1000
        mark = time.monotonic()
        if to_parse and not warmed:
            warm_up(config["stateDir"])
        phases["warmUp"] = (time.monotonic() - mark) * 1000
        context = {
            # Ends each task's output in a worker's stdout stream; random, so DAG output does not contain it by chance.
            "outputMarker": b"\n\0astro-parse:end-of-task:" + os.urandom(12).hex().encode() + b"\0\n",
            "localRoots": local_roots,
            "dagsFolder": dags_folder,
            "safeMode": discovery["safeMode"],
            "memoryLimitBytes": int(config.get("memoryLimitBytes") or 0),
            "trackRoots": track_roots,
        }
        try:
            settings.engine.dispose()
        except Exception:
            pass
        # Everything the imports made, garbage included, is frozen: a worker's collector never scans it (nor copies its
        # pages on write). No collection first: it took 150-200 ms with Airflow 3 loaded, and freed only memory the
        # workers share with us and never touch (a cold parse of 200 DAGs 1913 -> 1715 ms, Airflow 2 1306 -> 1120).
        gc.freeze()
        mark = time.monotonic()
        scheduler = Scheduler(config, channel, context, airflow_home)
        scheduler.run(to_parse)
        phases["parse"] = (time.monotonic() - mark) * 1000
        channel.send(
            {
                "type": "done",
                "preloaded": len(preloaded),
                # What a standby for the next run imports before it: the modules the files share.
                "modules": sorted(set(preloaded) | set(config.get("standby", {}).get("modules") or [])),
                "elapsedMs": (time.monotonic() - started) * 1000,
                "phasesMs": phases,
            }
        )
    except BaseException:
        try:
            channel.send({"type": "fatal", "reason": "harness", "message": traceback.format_exc()})
        except Exception:
            pass
        if scheduler is not None:
            scheduler.kill_all()
        _kill_descendants()
        os._exit(4)
    _kill_descendants()
    # Skip interpreter teardown (Airflow's atexit hooks, freeing millions of objects): nothing is left to flush.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
