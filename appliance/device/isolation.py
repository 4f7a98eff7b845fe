"""Keeping pixels away from the network.

The process that decodes and analyses frames (the pixel worker, `appliance/device/worker.py`)
moves itself into a new, empty network namespace before it opens anything: no interface
but its own loopback, no route anywhere, so even a decoder compromised by a malicious
stream has no way to send an image out. It can reach exactly one thing: its camera. For a
network camera the worker listens on its own loopback and, for each connection FFmpeg
makes there, asks the publisher process over a Unix socket pair for a TCP connection to the
camera's configured host and port; the publisher connects and passes the connected socket
over (SCM_RIGHTS). Nothing else can be asked for. Files, V4L2 and the Pi camera need no
network at all.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import socket
import struct
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from appliance.errors import ApplianceError, redact_url

log = logging.getLogger("shopper_edge.isolation")

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
CONNECT_TIMEOUT = 5.0


class IsolationError(ApplianceError):
    pass


def enter_empty_network_namespace() -> None:
    """Leave every network: a new network namespace with only loopback, brought up. Must
    run before the process starts any thread. Unprivileged, it takes a user namespace too
    (mapping our own ids to themselves), as `unshare -rn` does."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNET if uid == 0 else CLONE_NEWUSER | CLONE_NEWNET
    if libc.unshare(flags) != 0:
        code = ctypes.get_errno()
        raise IsolationError(f"cannot isolate the pixel process from the network: unshare: "
                             f"{os.strerror(code)} (allow user and network namespaces, or "
                             "set privacy.isolate_pixels: false)")
    if uid != 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags_now = struct.unpack_from("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags_now | IFF_UP))


def camera_address(url: str) -> tuple[str, int] | None:
    """(host, port) of a network camera URL; None for files and local devices."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme]


def via_loopback(url: str, port: int) -> str:
    """The same camera URL (credentials and path kept) pointing at 127.0.0.1:port."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))


class CameraDialer:
    """Publisher side: connects to the one camera address on the worker's request."""

    def __init__(self, control: socket.socket, url: str):
        self.control = control
        self.address = camera_address(url)
        self.url = redact_url(url)
        self._thread = threading.Thread(target=self._serve, name="camera-dialer", daemon=True)

    def start(self) -> CameraDialer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                request = self.control.recv(1)
            except OSError:
                return
            if not request:
                return  # the worker is gone
            try:
                camera = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT)
            except OSError as error:
                log.debug("%s: cannot connect: %s", self.url, error)
                self.control.sendall(b"n")
                continue
            try:
                camera.settimeout(None)
                socket.send_fds(self.control, [b"y"], [camera.fileno()])
            except OSError:
                return
            finally:
                camera.close()


class CameraRelay:
    """Worker side: a loopback listener whose every connection is joined to a camera
    connection obtained from the publisher."""

    def __init__(self, control: socket.socket):
        self.control = control
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="camera-relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                local, _ = self.listener.accept()
            except OSError:
                return
            camera = self._dial()
            if camera is None:
                local.close()  # FFmpeg sees the camera as unreachable and retries later
                continue
            for a, b in ((local, camera), (camera, local)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def _dial(self) -> socket.socket | None:
        with self._lock:  # one request at a time on the control socket
            try:
                self.control.sendall(b"c")
                answer, fds, _, _ = socket.recv_fds(self.control, 1, 1)
            except OSError as error:
                if error.errno not in (errno.EPIPE, errno.ECONNRESET):
                    log.warning("camera relay: %s", error)
                return None
        if answer != b"y" or not fds:
            return None
        return socket.socket(fileno=fds[0])


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    for s in (source, target):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    source.close()


# Landlock (Linux 5.13+), through its system calls: no library needed. Numbers are the same
# on every architecture (x86_64, aarch64, armv7).
SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
# Every right that creates, changes or removes a file: handled and granted nowhere. Reading
# (models, config, a video file) is not handled, so it stays as the service allows it.
FS_WRITE_FILE = 1 << 1
FS_WRITES_ABI1 = FS_WRITE_FILE | sum(1 << bit for bit in range(4, 13))  # remove, make *
FS_REFER, FS_TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none (or it is switched off)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                           ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def confine_pixel_worker(device_paths: tuple[str, ...] = ()) -> int:
    """Make this process unable to create or write any file (Landlock), unable to dump core
    and non-dumpable (no core file, no ptrace, /proc/PID/mem closed to others), for good
    and for every thread and child it will start. `device_paths`: camera devices that must
    stay writable (V4L2 and libcamera open them read-write); nothing can be created there.
    Must run before any thread starts. Returns the Landlock ABI used (0: none)."""
    import resource

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise IsolationError(f"cannot make the pixel process non-dumpable: prctl: "
                             f"{os.strerror(ctypes.get_errno())}")
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as error:  # setrlimit may be filtered: LimitCORE=0 does it
        if resource.getrlimit(resource.RLIMIT_CORE)[1] != 0:
            log.warning("cannot switch core dumps off (%s); the process is non-dumpable, "
                        "which also keeps it out of core files", error)
    abi = landlock_abi()
    if abi == 0:
        log.warning("Landlock is not available here (it needs Linux 5.13+ with landlock "
                    "in lsm=, and a system call filter that allows it): the pixel worker "
                    "can still write wherever the service may (its state directory)")
        return 0
    handled = FS_WRITES_ABI1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    attr = struct.pack("Q", handled)  # handled_access_fs alone: no network rules, no scopes
    ruleset = libc.syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), attr,
                           ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise IsolationError(f"cannot confine the pixel process: landlock_create_ruleset: "
                             f"{os.strerror(ctypes.get_errno())}")
    try:
        for path in device_paths:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                rule = struct.pack("=Qi", FS_WRITE_FILE, fd)  # packed: 12 bytes
                if libc.syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                                ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), rule,
                                ctypes.c_uint32(0)) != 0:
                    raise IsolationError(f"{path}: cannot allow the camera device: "
                                         f"landlock_add_rule: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
                libc.syscall(ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                             ctypes.c_uint32(0)) != 0:
            raise IsolationError(f"cannot confine the pixel process: landlock_restrict_self: "
                                 f"{os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


# A Jetson's NVDEC through nvv4l2decoder, and nvvidconv's VIC scaler: the nodes they open
# read-write, beside nvmap's buffers (JetPack's names; not tried here: no Jetson).
JETSON_DECODER_NODES = ("/dev/nvhost-nvdec", "/dev/nvhost-vic", "/dev/nvhost-ctrl",
                        "/dev/nvmap")


def camera_devices(source: str, decoder: str = "software") -> tuple[str, ...]:
    """The device files a local camera source opens read-write: a V4L2 node, or for the Pi
    camera (libcamera: media, video, sub-device and DMA-heap nodes) all of /dev; and the
    board's decoder nodes when the decoding child may decode on them (`decoder`)."""
    decoders = () if decoder in ("software", "gstreamer") else \
        hardware_decoder_nodes() + tuple(p for p in JETSON_DECODER_NODES if os.path.exists(p))
    if source.isdigit():
        return (f"/dev/video{source}", *decoders)
    if source.startswith("/dev/"):
        return (source, *decoders)
    if source.startswith("picamera"):
        return ("/dev",)
    return decoders


def hardware_decoder_nodes(sysfs: Path = Path("/sys/class/video4linux")) -> tuple[str, ...]:
    """V4L2 memory-to-memory decoder nodes (a Pi 4's bcm2835-codec-decode, a Pi 5's
    rpivid), by their names in sysfs; "codec" alone is no decoder (the Pi 4's encoder and
    ISP nodes are bcm2835-codec-encode and -isp)."""
    nodes = []
    for name in sorted(sysfs.glob("video*/name")):
        text = name.read_text(errors="replace").lower().replace("codec", "")
        if "dec" in text or "rpivid" in text:
            nodes.append(f"/dev/{name.parent.name}")
    return tuple(nodes)
