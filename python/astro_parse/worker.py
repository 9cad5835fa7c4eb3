"""A parse worker: a process forked from the supervisor (Airflow already imported and set up), which parses one DAG
file per task until it is told to stop, dies, or is killed for overrunning a task's deadline.

Each file goes through Airflow's own `DagBag.process_file`, so import errors, timeouts, cycle checks, DAG validation
and cluster policies are exactly Airflow's. Results go on the worker's own result pipe (never stdout: DAG code owns
stdout and stderr): the DAGs bagged, the import errors, the warnings, and the project files the import read (so the
runner can cache the verdict until one of them changes). Cross-file checks (duplicate DAG ids) are left to the
caller, which sees every file.

Each file is parsed as if it were the first: after a task, the project modules it imported are dropped and sys.path
and os.environ are put back. That is how Airflow's DAG processor isolates files (one process per file); a single
DagBag() would let one file's `sys.path.append(...)` leak into the files after it, an order dependence not kept here.
"""

import gc
import json
import os
import resource
import signal
import sys
import time
import traceback

def vm_size_bytes():
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        return 0


def _limit_resources(memory_limit_bytes):
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_limit_bytes > 0:
        # The supervisor's mappings (Airflow already imported) do not count against the DAG files' budget.
        limit = vm_size_bytes() + memory_limit_bytes
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        # If the kernel has to kill something for memory, it should be a worker, not the supervisor.
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")
    except OSError:
        pass


def _die_with_supervisor():
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _end_strays(worker_pid):
    """Ends what a DAG file started and left running (forked children, daemons that changed their parent): a
    file's processes end with its import, as they would with DagBag's own process. Found by process group (the
    worker leads its own) and by parentage; the sandbox's fresh /proc lists only the sandbox's processes."""
    parents = {}
    groups = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        groups[int(entry)] = int(fields[2])
    for pid, parent in parents.items():
        if pid == worker_pid:
            continue
        ancestor, hops = parent, 0
        while ancestor not in (0, 1, worker_pid) and hops < 64:
            ancestor, hops = parents.get(ancestor, 0), hops + 1
        if ancestor == worker_pid or groups.get(pid) == worker_pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


_METADATA_LISTERS = (os.sep + os.path.join("importlib", "metadata", "__init__.py"), os.sep + os.path.join("importlib_metadata", "__init__.py"))
# Every recorder made; the one FileFinder.find_spec wrapper reports each import lookup to those active.
_RECORDERS = []
_original_find_spec = None


def _record_lookups():
    """Wraps importlib's FileFinder.find_spec (once) so that recorders learn which module names an import looked up
    in which folder: what a folder's listing meant to the import system, instead of the listing as a whole."""
    global _original_find_spec
    if _original_find_spec is not None:
        return
    from importlib.machinery import FileFinder

    _original_find_spec = FileFinder.find_spec

    def find_spec(self, fullname, target=None):
        for recorder in _RECORDERS:
            if recorder.active:
                recorder.lookup(self.path, fullname)
        return _original_find_spec(self, fullname, target)

    FileFinder.find_spec = find_spec


def counted_name(name, listing):
    """Whether a folder entry counts for a partial listing (DependencyRecorder.deps): a module or package an import
    looked up (`name`, `name.py`, `name.cpython-311-x86_64-linux-gnu.so`, ...), or a distribution's metadata."""
    if name.split(".", 1)[0] in listing["modules"]:
        return True
    low = name.lower()
    return listing["metadata"] and (low.endswith((".dist-info", ".egg-info", ".egg")) or low == "egg-info")


def listing_hash(folder, listing=None):
    """sha256 of a folder's sorted entry names (those counted by `listing`, when given), each followed by a NUL;
    None when it cannot be listed. The runner computes the same (listingHash in src/parse/cache.ts)."""
    import hashlib

    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    if listing is not None:
        names = [n for n in names if counted_name(n, listing)]
    return hashlib.sha256("".join(n + "\0" for n in names).encode("utf-8", "surrogateescape")).hexdigest()


class DependencyRecorder:
    """Records the project files and directories an import touched, through Python's audit hooks.

    A folder's listing is recorded by what it was read for. Listed by the import system (FileFinder filling its
    cache), only the names an import looked up there count: a new `dags/other_dag.py` changes nothing for an import
    of `helpers`, while a new `dags/helpers.py` does. Listed by importlib.metadata, only the distributions' metadata
    folders count. Listed by anything else (Airflow's plugin scan, a DAG's own os.listdir), every name counts.
    """

    _EVENTS = frozenset(("open", "os.listdir", "os.scandir"))

    def __init__(self, roots, exclude=()):
        self.roots = tuple(r.rstrip(os.sep) + os.sep for r in roots)
        self.exclude = tuple(e.rstrip(os.sep) + os.sep for e in exclude)
        self.reset(None, active=False)
        _record_lookups()
        _RECORDERS.append(self)

    def reset(self, ignore, active=True):
        self.ignore = ignore
        self.files = set()
        self.dirs = set()
        self.lookups = {}
        self.metadata = set()
        self.active = active

    def _tracked(self, path):
        """The absolute path when it is a project path this recorder follows, else None."""
        path = os.path.abspath(path)
        if not (path + os.sep).startswith(self.roots) or path == self.ignore or "__pycache__" in path:
            return None
        if self.exclude and (path + os.sep).startswith(self.exclude):
            return None
        return path

    def lookup(self, folder, fullname):
        folder = self._tracked(folder or ".")
        if folder is not None:
            self.lookups.setdefault(folder, set()).add(fullname.rpartition(".")[2])

    def hook(self, event, args):
        if event not in self._EVENTS or not self.active:
            return
        path = args[0] if args else None
        if isinstance(path, bytes):
            try:
                path = os.fsdecode(path)
            except Exception:
                return
        if path is None and event != "open":
            path = "."
        if not isinstance(path, str):
            return
        path = self._tracked(path)
        if path is None:
            return
        if event == "open":
            self.files.add(path)
            return
        if event == "os.listdir":
            caller = sys._getframe(1).f_code
            if caller.co_name == "_fill_cache" and "importlib._bootstrap_external" in caller.co_filename:
                return  # the names looked up are recorded by lookup()
            if caller.co_name == "children" and caller.co_filename.endswith(_METADATA_LISTERS):
                self.metadata.add(path)
                return
        self.dirs.add(path)

    def deps(self):
        """What was recorded, as the runner hashes it: folders listed as a whole, and folders of which only some
        names count (`modules`: names an import looked up; `metadata`: distributions' metadata folders)."""
        folders = sorted((set(self.lookups) | self.metadata) - self.dirs)
        return {
            "files": sorted(self.files),
            "dirs": sorted(self.dirs),
            "listings": [
                {"path": f, "modules": sorted(self.lookups.get(f, ())), "metadata": f in self.metadata} for f in folders
            ],
        }


def _keep_default_segv():
    """DagBag installs a Python-level SIGSEGV handler, which turns a crash into an endless fault loop; keep the
    default so a segfaulting DAG file kills only its worker and is reported as such."""
    import airflow.models.dagbag as dagbag_module

    real_signal = signal

    class _SignalProxy:
        def __getattr__(self, name):
            return getattr(real_signal, name)

        @staticmethod
        def signal(signum, handler):
            if signum == real_signal.SIGSEGV:
                return real_signal.getsignal(signum)
            return real_signal.signal(signum, handler)

    dagbag_module.signal = _SignalProxy()
    # The supervisor's warm-up parse already installed DagBag's handler in the process we were forked from.
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)


def _find_origin(dag, candidates):
    """Name of an ordinary (sys.modules-cached) module holding this DAG object, if any: DagBag, which imports every
    file in one process, sees that very object again when another file imports the module."""
    for name in candidates:
        module = sys.modules.get(name)
        namespace = getattr(module, "__dict__", None)
        if not namespace:
            continue
        try:
            for value in list(namespace.values()):
                if value is dag:
                    return name
        except Exception:
            continue
    return None


def _is_local(module, roots):
    location = getattr(module, "__file__", None)
    if not location:
        paths = getattr(module, "__path__", None)
        try:
            location = next(iter(paths)) if paths else None
        except Exception:
            location = None
    if not isinstance(location, str):
        return False
    location = os.path.abspath(location)
    return (location + os.sep).startswith(roots)


class Worker:
    def __init__(self, context, task_fd, result_fd):
        self.context = context
        self.task_fd = task_fd
        self.result_fd = result_fd
        self.pid = os.getpid()
        self.pending = b""
        self.local_roots = tuple(r.rstrip(os.sep) + os.sep for r in context["localRoots"])

    def _save_process_state(self):
        # What a DAG file may break for the files after it in this worker: its standard streams and signal
        # dispositions. Both are put back after every task.
        self.saved_fds = {fd: os.dup(fd) for fd in (0, 1, 2)}
        for fd in self.saved_fds.values():
            os.set_inheritable(fd, False)
        self.saved_streams = (sys.stdin, sys.stdout, sys.stderr)
        self.saved_handlers = {}
        for signum in signal.valid_signals():
            try:
                self.saved_handlers[signum] = signal.getsignal(signum)
            except (ValueError, OSError):
                pass

    def _restore_process_state(self):
        for fd, saved in self.saved_fds.items():
            os.dup2(saved, fd)
        streams = []
        for fd, stream, mode in zip((0, 1, 2), self.saved_streams, ("r", "w", "w")):
            if stream is None or stream.closed:
                stream = open(fd, mode, closefd=False)
            streams.append(stream)
        sys.stdin, sys.stdout, sys.stderr = streams
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in self.saved_handlers.items():
            try:
                if signal.getsignal(signum) is not handler and handler is not None:
                    signal.signal(signum, handler)
            except (ValueError, OSError, TypeError):
                pass

    def setup(self):
        _die_with_supervisor()
        _limit_resources(self.context["memoryLimitBytes"])
        self.vm_baseline = vm_size_bytes()
        import logging

        logging.getLogger("airflow").disabled = True
        gc.enable()
        self.recorder = DependencyRecorder(self.context["trackRoots"])
        sys.addaudithook(self.recorder.hook)
        _keep_default_segv()
        from airflow.models.dagbag import DagBag

        self.DagBag = DagBag
        self._save_process_state()

    def next_task(self):
        while b"\n" not in self.pending:
            try:
                chunk = os.read(self.task_fd, 65536)
            except InterruptedError:
                continue
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def parse(self, path):
        import importlib

        modules_before = set(sys.modules)
        path_before = list(sys.path)
        environ_before = dict(os.environ)
        importlib.invalidate_caches()
        self.recorder.reset(path)
        try:
            bag = self.DagBag(dag_folder=self.context["dagsFolder"], include_examples=False, collect_dags=False)
            started = time.monotonic()
            bag.process_file(path, only_if_updated=False, safe_mode=self.context["safeMode"])
            duration_ms = (time.monotonic() - started) * 1000
            self.recorder.active = False
            added = [name for name in sys.modules if name not in modules_before]
            candidates = [name for name in added if not name.startswith("unusual_prefix_")]
            dags = [
                {"dagId": dag_id, "fileloc": dag.fileloc, "origin": _find_origin(dag, candidates)}
                for dag_id, dag in bag.dags.items()
            ]
            result = {
                "status": "parsed",
                "dags": dags,
                "importErrors": dict(bag.import_errors),
                "warnings": list(getattr(bag, "captured_warnings", {}).get(path, ())),
                "deps": self.recorder.deps(),
                "durationMs": duration_ms,
            }
        except BaseException:
            self.recorder.active = False
            added = [name for name in sys.modules if name not in modules_before]
            result = {"status": "harness-error", "message": traceback.format_exc()}
        finally:
            bag = None
        for name in added:
            module = sys.modules.get(name)
            if name.startswith("unusual_prefix_") or _is_local(module, self.local_roots):
                sys.modules.pop(name, None)
        sys.path[:] = path_before
        self._restore_process_state()
        if dict(os.environ) != environ_before:
            os.environ.clear()
            os.environ.update(environ_before)
        return result

    def send(self, result):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        result["vmBytes"] = vm_size_bytes()
        data = memoryview((json.dumps(result, default=str) + "\n").encode())
        while data:
            try:
                written = os.write(self.result_fd, data)
            except InterruptedError:
                continue
            data = data[written:]

    def end_output(self):
        """Marks the end of this task's output on stdout (the supervisor splits the stream there)."""
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        marker = memoryview(self.context["outputMarker"])
        try:
            while marker:
                marker = marker[os.write(1, marker):]
        except OSError:
            pass

    def should_retire(self):
        limit = self.context["memoryLimitBytes"]
        return limit > 0 and vm_size_bytes() - self.vm_baseline > limit // 2

    def serve(self):
        try:
            self.setup()
        except BaseException:
            self.send({"status": "harness-error", "message": traceback.format_exc()})
            os._exit(71)
        while True:
            task = self.next_task()
            if task is None:
                os._exit(0)
            result = self.parse(task["path"])
            if os.getpid() != self.pid:
                # A process a DAG file forked came back here (its import went on in the child): only the worker
                # itself reports.
                os._exit(0)
            _end_strays(self.pid)
            result["path"] = task["path"]
            self.end_output()
            retire = self.should_retire()
            result["retiring"] = retire
            try:
                self.send(result)
            except OSError:
                os._exit(0)
            if retire:
                os._exit(0)
            gc.collect(0)


def serve(context, task_fd, result_fd):
    """Runs in the forked child. Never returns."""
    try:
        Worker(context, task_fd, result_fd).serve()
    finally:
        os._exit(70)
