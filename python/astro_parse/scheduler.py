"""Hands DAG files to forked workers, a few at a time, and turns what comes back (or how a worker died) into one
result message per file on the result channel."""

import json
import os
import selectors
import signal
import sys
import time

from . import worker as worker_module
from .paths import error_line, relpath


class TaskOutput:
    def __init__(self):
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk, limit):
        room = max(0, limit - len(self.data))
        self.data.extend(chunk[:room])
        self.dropped += len(chunk) - min(room, len(chunk))


class WorkerProcess:
    def __init__(self, pid, task_w, result_r, output_r):
        self.pid = pid
        self.task_w = task_w
        self.result_r = result_r
        self.output_r = output_r
        # Paths sent to the worker, oldest first; the first is the one it is parsing.
        self.queue = []
        self.task_started = 0.0
        self.deadline = None
        self.timeout_seconds = 0.0
        self.result = bytearray()
        # Output of the task being run, and of tasks whose end-of-output marker came before their result.
        self.output = TaskOutput()
        self.finished_outputs = []
        self.carry = b""
        self.exit_status = None
        self.killed_for_timeout = False
        self.retiring = False


class Scheduler:
    RESULT_LIMIT = 64 * 1024 * 1024

    def __init__(self, config, channel, context, airflow_home):
        self.config = config
        self.channel = channel
        self.context = context
        self.airflow_home = airflow_home
        self.max_workers = max(1, int(config.get("workers") or 1))
        self.grace = float(config.get("hardTimeoutGraceSeconds", 5))
        self.fallback_timeout = float(config.get("fallbackTimeoutSeconds", 300))
        self.output_limit = int(config.get("outputLimitBytes", 16384))
        # Each worker holds the next file while it parses one, so it never waits for the supervisor.
        self.depth = 2
        self.selector = selectors.DefaultSelector()
        self.workers = {}
        self.fd_owner = {}
        self.pending = []
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")

    def _timeout_for(self, path):
        from airflow import settings

        try:
            return float(settings.get_dagbag_import_timeout(path))
        except Exception:
            pass
        try:  # Airflow before 2.6 has no per-file hook, only the setting.
            from airflow.configuration import conf

            return conf.getfloat("core", "DAGBAG_IMPORT_TIMEOUT")
        except Exception:
            return 30.0

    def _owned_fds(self):
        fds = [self.wake_r, self.wake_w, self.channel.fd]
        try:
            fds.append(self.selector.fileno())
        except Exception:
            pass
        for worker in self.workers.values():
            fds.extend(fd for fd in (worker.task_w, worker.result_r, worker.output_r) if fd is not None)
        return fds

    def _spawn(self):
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        output_r, output_w = os.pipe()
        inherited = self._owned_fds()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                signal.set_wakeup_fd(-1)
                for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
                    signal.signal(signum, signal.SIG_DFL)
                for fd in inherited + [task_w, result_r, output_r]:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                devnull = os.open(os.devnull, os.O_RDONLY)
                os.dup2(devnull, 0)
                os.dup2(output_w, 1)
                os.dup2(output_w, 2)
                os.close(devnull)
                os.close(output_w)
                worker_module.serve(self.context, task_r, result_w)
            finally:
                os._exit(70)
        for fd in (task_r, result_w, output_w):
            os.close(fd)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        for fd in (result_r, output_r):
            os.set_blocking(fd, False)
        worker = WorkerProcess(pid, task_w, result_r, output_r)
        self.workers[pid] = worker
        self.fd_owner[result_r] = (worker, "result")
        self.fd_owner[output_r] = (worker, "output")
        self.selector.register(result_r, selectors.EVENT_READ, "pipe")
        self.selector.register(output_r, selectors.EVENT_READ, "pipe")
        return worker

    def _start_head(self, worker):
        """The worker has begun the first task in its queue (it reads the next one as soon as it is done)."""
        path = worker.queue[0]
        timeout = self._timeout_for(path)
        limit = timeout if timeout > 0 else self.fallback_timeout
        worker.task_started = time.monotonic()
        worker.deadline = worker.task_started + limit + min(self.grace, max(1.0, limit / 2))
        worker.timeout_seconds = timeout

    def _dispatch(self, worker, path):
        worker.queue.append(path)
        if len(worker.queue) == 1:
            self._start_head(worker)
        try:
            os.write(worker.task_w, (json.dumps({"path": path}) + "\n").encode())
        except OSError:
            pass  # the worker is gone; its exit is reaped and its tasks reported or requeued

    def _drain(self, fd):
        owner = self.fd_owner.get(fd)
        if owner is None:
            return
        worker, kind = owner
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                self._close_fd(fd)
                break
            if kind == "result":
                if len(worker.result) < self.RESULT_LIMIT:
                    worker.result.extend(chunk)
            else:
                self._split_output(worker, chunk)
        if kind == "result":
            self._take_results(worker)

    def _split_output(self, worker, chunk):
        """A worker writes a marker after each task's output (before its result), so output is attributed to the
        right file even while the worker has already started the next one."""
        marker = self.context["outputMarker"]
        data = worker.carry + chunk
        while True:
            at = data.find(marker)
            if at == -1:
                break
            worker.output.add(data[:at], self.output_limit)
            worker.finished_outputs.append(worker.output)
            worker.output = TaskOutput()
            data = data[at + len(marker):]
        # Keep a possible partial marker for the next chunk.
        keep = len(marker) - 1
        worker.output.add(data[: max(0, len(data) - keep)], self.output_limit)
        worker.carry = data[max(0, len(data) - keep):]

    def _output_for_head(self, worker):
        if worker.output_r in self.fd_owner:
            self._drain(worker.output_r)
        if worker.finished_outputs:
            return worker.finished_outputs.pop(0)
        # No marker (the worker died, or its output was cut off): whatever it wrote belongs to this task.
        output, worker.output = worker.output, TaskOutput()
        output.add(worker.carry, self.output_limit)
        worker.carry = b""
        return output

    def _take_results(self, worker):
        while b"\n" in worker.result:
            line, rest = bytes(worker.result).split(b"\n", 1)
            worker.result = bytearray(rest)
            if not worker.queue:
                continue
            try:
                parsed = json.loads(line.decode("utf-8"))
            except Exception:
                parsed = None
            path = worker.queue[0]
            self._report(worker, path, parsed)
            worker.queue.pop(0)
            worker.deadline = None
            trusted = isinstance(parsed, dict) and parsed.get("path") == path
            if not trusted:
                # The result pipe carried something that is not our answer: do not trust this worker again.
                self._requeue(worker)
                self._kill(worker)
                return
            if parsed.get("retiring"):
                self._requeue(worker)
                self._retire(worker)
                return
            if worker.queue:
                self._start_head(worker)

    def _requeue(self, worker):
        """Tasks sent to a worker that will not do them go back to the front of the pending list."""
        while len(worker.queue) > 1:
            self.pending.append(worker.queue.pop())
        if worker.queue and worker.deadline is None:
            self.pending.append(worker.queue.pop())

    def _close_fd(self, fd):
        if fd in self.fd_owner:
            del self.fd_owner[fd]
            try:
                self.selector.unregister(fd)
            except (KeyError, ValueError):
                pass
            os.close(fd)

    def _retire(self, worker):
        if worker.task_w is not None:
            os.close(worker.task_w)
            worker.task_w = None

    def _kill(self, worker):
        worker.retiring = True
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(worker.pid, signal.SIGKILL)
            except OSError:
                pass

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            worker = self.workers.get(pid)
            if worker is not None:
                worker.exit_status = status
                self._gone(worker)

    def _gone(self, worker):
        for fd in (worker.result_r, worker.output_r):
            if fd in self.fd_owner:
                self._drain(fd)
                self._close_fd(fd)
        try:
            # Whatever DAG code started in the worker's process group goes with it.
            os.killpg(worker.pid, signal.SIGKILL)
        except OSError:
            pass
        self._retire(worker)
        del self.workers[worker.pid]
        if worker.queue:
            head = worker.queue[0]
            while len(worker.queue) > 1:
                self.pending.append(worker.queue.pop())
            worker.queue.clear()
            self._report(worker, head, None)

    def _report(self, worker, path, parsed):
        output = self._output_for_head(worker)
        message = {
            "type": "file",
            "path": path,
            "relPath": relpath(path, self.airflow_home),
            "durationMs": (time.monotonic() - worker.task_started) * 1000,
            "output": output.data.decode("utf-8", "replace"),
            "outputDropped": output.dropped,
        }
        if worker.killed_for_timeout and parsed is None:
            seconds = worker.timeout_seconds if worker.timeout_seconds > 0 else self.fallback_timeout
            message.update(
                status="timeout",
                errors=[
                    self._error(
                        path,
                        f"DagBag import timeout for {path} after {seconds:g}s: the import ignored the timeout, so "
                        "its process was killed.",
                        "timeout",
                    )
                ],
            )
        elif isinstance(parsed, dict) and parsed.get("status") == "parsed":
            errors = [
                self._error(err_path, text.strip(), "import", error_line(text, err_path))
                for err_path, text in (parsed.get("importErrors") or {}).items()
            ]
            dags = []
            for dag in parsed.get("dags") or []:
                dag["relFileloc"] = relpath(dag.get("fileloc") or path, self.airflow_home)
                dags.append(dag)
            message.update(
                status="parsed",
                errors=errors,
                dags=dags,
                warnings=parsed.get("warnings") or [],
                deps=parsed.get("deps") or {"files": [], "dirs": []},
                parseMs=parsed.get("durationMs"),
            )
        elif isinstance(parsed, dict) and parsed.get("status") == "harness-error":
            message.update(status="crashed", errors=[self._error(path, str(parsed.get("message", "")).strip(), "crash")])
        else:
            message.update(status="crashed", errors=[self._error(path, self._describe_exit(worker, path), "crash")])
        self.channel.send(message)

    def _error(self, path, text, kind, line=None):
        error = {"path": path, "relPath": relpath(path, self.airflow_home), "message": text, "kind": kind}
        if line is not None:
            error["line"] = line
        return error

    def _describe_exit(self, worker, path):
        status = worker.exit_status
        rel = relpath(path, self.airflow_home)
        if status is None:
            return f"The process parsing {rel} returned something that is not a parse result."
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            if sig == signal.SIGKILL:
                return (
                    f"The process parsing {rel} was killed (SIGKILL) while importing it, most likely because it ran "
                    "out of memory."
                )
            if sig == signal.SIGSEGV:
                return f"Received SIGSEGV signal while processing {path}: the import crashed its process."
            return f"The process parsing {rel} was killed by {name} while importing it."
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        return (
            f"The import of {rel} ended its process (exit code {code}) before the parse finished: a DAG file must "
            "not call os._exit() or otherwise end the interpreter at import time."
        )

    def _enforce_deadlines(self):
        now = time.monotonic()
        for worker in list(self.workers.values()):
            if worker.deadline is not None and not worker.killed_for_timeout and now >= worker.deadline:
                worker.killed_for_timeout = True
                self._kill(worker)

    def _fill(self):
        for worker in list(self.workers.values()):
            while self.pending and not worker.retiring and worker.task_w is not None and len(worker.queue) < self.depth:
                self._dispatch(worker, self.pending.pop())
        while self.pending and len(self.workers) < self.max_workers:
            worker = self._spawn()
            while self.pending and len(worker.queue) < self.depth:
                self._dispatch(worker, self.pending.pop())
        if not self.pending:
            for worker in self.workers.values():
                if not worker.queue:
                    self._retire(worker)

    def run(self, paths):
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.pending = list(reversed(paths))
        self._fill()
        while self.pending or self.workers:
            deadlines = [w.deadline for w in self.workers.values() if w.deadline is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 1.0
            for key, _events in self.selector.select(timeout):
                if key.data == "wake":
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                else:
                    self._drain(key.fd)
            self._reap()
            self._enforce_deadlines()
            self._fill()

    def kill_all(self):
        for worker in list(self.workers.values()):
            self._kill(worker)
