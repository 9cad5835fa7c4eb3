"""Builds the host-mode sandbox's root filesystem and enters it, then runs the command in it without privileges.

Run by src/parse/sandbox.ts as the first process of new user (unless root), network, PID, IPC, UTS and mount
namespaces, as root there, before anything of the command runs, with `python -I -S` (nothing of the environment or
of site-packages is imported):

    confine.py <project> <scratch> <shared> <cgroup or -> <pids max> <hide...> -- <reveal...> -- <command> <args>...

One process making the mount(2) calls itself: the shell script it replaces started about 75 processes (`mount`,
`touch`, `mkdir`, ...) per run, 100-150 ms of every parse. What it builds is described in sandbox.ts. Any step
that cannot be done ends the run with exit status 97 and one line on stderr, "astro sandbox: <why>", before
anything of the command ran; the steps that only harden /proc further are best effort, as container engines make them.
"""

import ctypes
import os
import sys

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# Per-mount flags a remount must repeat: the kernel refuses to clear one that a more privileged namespace locked.
KEPT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
    "nosymfollow": MS_NOSYMFOLLOW,
}

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def fail(why):
    os.write(2, ("astro sandbox: %s\n" % why).encode("utf-8", "backslashreplace"))
    os._exit(97)


def _bytes(value):
    return None if value is None else os.fsencode(value)


def mount(source, target, fstype, flags, data=None):
    """True when mounted; the errno's text otherwise."""
    if libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data)) == 0:
        return True
    return os.strerror(ctypes.get_errno())


def must(result, why):
    if result is not True:
        fail("%s (%s)" % (why, result))


def is_real_dir(path):
    return os.path.isdir(path) and not os.path.islink(path)


def unescape_mountinfo(field):
    """Mount points in /proc/self/mountinfo have space, tab, newline and backslash as octal escapes."""
    out = bytearray()
    raw = os.fsencode(field)
    i = 0
    while i < len(raw):
        if raw[i : i + 1] == b"\\" and i + 4 <= len(raw) and raw[i + 1 : i + 4].isdigit():
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def mounts():
    """(mount point, per-mount options) of every mount this namespace sees."""
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split(" ")
            yield unescape_mountinfo(fields[4]), fields[5].split(",")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def split_lists(args):
    first = args.index("--")
    second = args.index("--", first + 1)
    return args[:first], args[first + 1 : second], args[second + 1 :]


def main(argv):
    project, scratch, shared, cgroup, pids = argv[:5]
    hide, reveal, command = split_lists(argv[5:])
    if not command:
        fail("no command to run")
    meta, root, layers = (os.path.join(scratch, name) for name in ("meta", "root", "layers"))
    try:
        for d in (meta, root, layers):
            os.makedirs(d, exist_ok=True)
    except OSError:
        fail("cannot create %s" % scratch)

    if cgroup != "-":
        try:
            os.mkdir(cgroup)
        except OSError:
            pass
        else:
            try:
                write(os.path.join(cgroup, "pids.max"), pids)
                write(os.path.join(cgroup, "cgroup.procs"), "0")
                write(os.path.join(meta, "pids"), pids)
            except OSError:
                pass

    must(mount("astro-layers", layers, "tmpfs", 0, "mode=700"), "cannot mount a tmpfs")
    must(mount("/", root, None, MS_BIND | MS_REC), "cannot bind the root filesystem")
    for d in ("/tmp", "/var/tmp", "/run"):
        if is_real_dir(root + d):
            must(mount("tmpfs", root + d, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"), "cannot mount %s" % d)
    dev = root + "/dev"
    must(mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755"), "cannot mount /dev")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        try:
            open(os.path.join(dev, name), "w").close()
        except OSError as error:
            fail("cannot bind /dev/%s (%s)" % (name, error.strerror))
        must(mount("/dev/" + name, os.path.join(dev, name), None, MS_BIND), "cannot bind /dev/%s" % name)
    try:
        os.mkdir(dev + "/shm")
        os.mkdir(dev + "/pts")
    except OSError as error:
        fail("cannot mount /dev/shm (%s)" % error.strerror)
    must(mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"), "cannot mount /dev/shm")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        try:
            os.symlink(target, os.path.join(dev, name))
        except OSError:
            pass

    for h in hide:
        if not is_real_dir(root + h):
            continue
        must(mount("tmpfs", root + h, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64k"), "cannot hide %s" % h)
    for r in reveal:
        if not os.path.exists(r):
            continue
        if os.path.isdir(root + r):
            try:
                if os.listdir(root + r):
                    continue
            except OSError:
                pass
        try:
            os.makedirs(root + r, exist_ok=True)
        except OSError:
            pass
        must(mount(r, root + r, None, MS_BIND | MS_REC), "cannot show %s" % r)

    try:
        os.makedirs(root + project, exist_ok=True)
        os.makedirs(root + shared, exist_ok=True)
    except OSError:
        fail("cannot create %s in the sandbox" % project)
    must(mount(shared, root + shared, None, MS_BIND), "cannot bind %s" % shared)
    os.makedirs(layers + "/upper", exist_ok=True)
    os.makedirs(layers + "/work", exist_ok=True)
    options = "lowerdir=%s,upperdir=%s,workdir=%s" % (project, layers + "/upper", layers + "/work")
    if mount("overlay", root + project, "overlay", 0, options) is True:
        view = "overlay"
    else:
        import subprocess

        copy = layers + "/copy"
        os.makedirs(copy, exist_ok=True)
        if subprocess.call(["cp", "-a", project + "/.", copy + "/"]) != 0 or mount(copy, root + project, None, MS_BIND) is not True:
            fail("cannot make a private view of %s" % project)
        view = "copy"
    try:
        write(meta + "/view", view + "\n")
    except OSError:
        pass  # only the report's words; the view is made either way

    proc = root + "/proc"
    must(mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC), "cannot mount /proc")
    # As container engines do: what in /proc could change the machine is read-only, what describes its memory hidden.
    for name in ("sys", "sysrq-trigger", "irq", "bus", "fs"):
        path = os.path.join(proc, name)
        if os.path.exists(path) and mount(path, path, None, MS_BIND) is True:
            mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for name in ("kcore", "keys", "timer_list", "sched_debug"):
        path = os.path.join(proc, name)
        if os.path.isfile(path):
            mount("/dev/null", path, None, MS_BIND)

    writable = {root + d for d in ("/tmp", "/var/tmp", "/run", "/dev/shm", "/proc")} | {root + project, root + shared}
    for point, options in list(mounts()):
        if point != root and not point.startswith(root + "/"):
            continue
        if point.startswith(proc + "/") or point.startswith(dev + "/") or point in writable:
            continue
        kept = 0
        for option in options:
            kept |= KEPT_FLAGS.get(option, 0)
        mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)

    try:
        os.mkdir(root + "/tmp/.old-root")
        os.chdir(root)
    except OSError:
        fail("cannot enter the sandbox root")
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None or libc.syscall(number, b".", b"tmp/.old-root") != 0:
        fail("cannot enter the sandbox root")
    if libc.umount2(b"/tmp/.old-root", MNT_DETACH) != 0:
        fail("cannot detach the host root")
    try:
        os.rmdir("/tmp/.old-root")
        os.chdir(project)
    except OSError:
        fail("cannot enter %s" % project)
    try:
        os.execvp("setpriv", ["setpriv", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"] + command)
    except OSError as error:
        fail("cannot drop privileges with setpriv (%s)" % error.strerror)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Exception as error:  # a step this script did not foresee: still a set-up failure, never half a sandbox
        fail("%s: %s" % (type(error).__name__, error))
