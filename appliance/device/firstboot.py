"""Boot of a flashed card (tools/image): takes what the installer dropped on the boot partition.

The installer edits `shopper-edge/device.yaml` on the card's FAT partition and puts the
secrets (MQTT password, client key) in `shopper-edge/secrets/` and any certificate (the
store's CA) in `shopper-edge/`. At every boot (shopper-edge-firstboot.service, before ssh and
the cameras) this moves them to the same paths under /etc/shopper-edge, secrets 0600 owned by
the service user, the rest 0640 root:service group, and deletes them from the FAT partition
after overwriting them (a FAT partition has no owners or modes: anyone reading the card could
read them). A valid config then names the cameras to start and the hostname; a missing or
invalid one is one line in the journal, the box stays up and counts nothing, and the invalid
file stays on the card to be corrected; once the network is up, that line also goes to each
camera's status topic when the config's broker part is readable
(shopper-edge-config-error.service runs `--report-config-error`). An `authorized_keys` there
(the administrator's ssh public keys) becomes root's and leaves the card. Also: fresh ssh host
keys where the image has none, and the root filesystem grown to the whole card.

    python -m appliance.device.firstboot [--boot DIR] [--etc DIR] [--report-config-error]
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from appliance.errors import ApplianceError, ConfigError

BOOT_DROP = Path("/boot/firmware/shopper-edge")
ETC = Path("/etc/shopper-edge")
SERVICE_USER = "shopper-edge"
CONFIG = "device.yaml"
ADMIN_KEYS = "authorized_keys"
# Root's: the box has no other account, and Debian's sshd lets root in by key only.
ROOT_SSH = Path("/root/.ssh")
SSH_PUBLIC_KEY = re.compile(r"(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|"
                            r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) "
                            r"[A-Za-z0-9+/]+={0,3}( [ -~]*)?")
REPORT_UNIT = "shopper-edge-config-error.service"
REPORT_WAIT_SECONDS = 300.0  # for the network and the broker, then the journal only


def wipe(path: Path) -> None:
    """Overwrites a file with zeros before deleting it: FAT rewrites a file's clusters in
    place, so the secret's bytes are not left in free space (best effort on flash media)."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(bytes(size))
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def move_drop(drop: Path, etc: Path, uid: int, gid: int) -> Path | None:
    """Moves every dropped file but device.yaml from `drop` to `etc` (secrets/ 0600 uid:gid,
    others 0640 root:gid, folders 0750 root:gid) and wipes it from `drop`. Returns the
    dropped device.yaml, still in `drop` (it is checked before it replaces the device's)."""
    if not drop.is_dir():
        return None
    config = None
    for source in sorted(p for p in drop.rglob("*") if p.is_file()):
        relative = source.relative_to(drop)
        if relative == Path(ADMIN_KEYS):
            continue  # take_admin_keys'
        if relative == Path(CONFIG):
            config = source
            continue
        secret = relative.parts[0] == "secrets"
        target = etc / relative
        for folder in reversed(target.relative_to(etc).parents[:-1]):
            made = etc / folder
            made.mkdir(mode=0o750, exist_ok=True)
            os.chown(made, 0 if os.geteuid() == 0 else -1, gid)
            made.chmod(0o750)
        install(source, target, 0o600 if secret else 0o640, uid if secret else 0, gid)
        wipe(source)
    for folder in sorted((p for p in drop.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    return config


def take_admin_keys(drop: Path, ssh_dir: Path = ROOT_SSH) -> None:
    """The card's authorized_keys replaces root's (0600 in a 0700 .ssh): an installer revokes
    a key by dropping the file without it. A line that is no ssh public key (a private key
    dropped by mistake, options, junk): nothing installed, one line, and the file is wiped
    from the card all the same (it may be a private key)."""
    source = drop / ADMIN_KEYS
    if not source.is_file():
        return
    text = source.read_bytes().decode("utf-8", "replace")
    keys = [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    bad = next((n for n, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")
                and not SSH_PUBLIC_KEY.fullmatch(line.strip())), None)
    if bad is not None or not keys:
        where = f"line {bad}" if bad is not None else "no key"
        print(f"firstboot: {source}: {where}: not an ssh public key; no key installed",
              flush=True)
    else:
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        ssh_dir.chmod(0o700)
        install(source, ssh_dir / ADMIN_KEYS, 0o600, 0, 0 if os.geteuid() == 0 else -1)
        print(f"firstboot: {len(keys)} ssh key(s) for root installed from the card", flush=True)
    wipe(source)


def install(source: Path, target: Path, mode: int, uid: int, gid: int) -> None:
    """Writes a copy with its owner and mode set before any byte is in it."""
    temporary = target.with_name(f".{target.name}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchown(fd, uid if os.geteuid() == 0 else -1, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(source.read_bytes())
            f.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(target)


def take_config(dropped: Path, etc: Path, gid: int) -> tuple[str, ...]:
    """Checks a dropped device.yaml as the cameras will read it (its secrets and
    certificates already under etc), installs it and the camera ids, wipes it from the card
    and returns the camera ids. An invalid one raises ConfigError and stays on the card."""
    target = etc / CONFIG
    config = check_config(dropped)
    install(dropped, target, 0o640, 0, gid)
    ids = tuple(c.id for c in config.cameras)
    install_text(etc / "cameras", "".join(f"{i}\n" for i in ids), gid)
    wipe(dropped)
    return ids


def check_config(path: Path):
    """The config as the cameras will read it; raises ApplianceError."""
    from appliance.device.config import load_config
    from appliance.device.limits import check_limits

    config = load_config(path)
    check_limits(config)
    return config


def status_line(error: ApplianceError, path: Path) -> bytes:
    """A config error as the status topic carries it: the file's name for its path, each
    value quoted from the config as '...', anything URL-like cut out, printable ASCII only."""
    from appliance.messages import CONFIG_ERROR

    text = str(error).replace(str(path), path.name)
    text = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "'...'", text)
    text = re.sub(r"\S*(?:@|://)\S*", "...", text)
    text = re.sub(r"[^ -~]", "?", text)
    return (CONFIG_ERROR + text[:300]).encode("ascii")


def broker_of(path: Path):
    """(store id, camera ids, MqttConfig) of a config invalid elsewhere, read with the same
    rules; None when one of them is unreadable or there is no MQTT output."""
    import yaml

    from appliance.device.config_reader import ID_PATTERN, ConfigReader
    from appliance.device.outputs_config import parse_outputs

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("cameras"), list):
        return None
    r = ConfigReader(path)
    try:
        store_id = r.string(raw.get("store_id"), "store_id", ID_PATTERN)
        ids = tuple(r.string(c.get("id") if isinstance(c, dict) else None,
                             f"cameras[{i}].id", ID_PATTERN)
                    for i, c in enumerate(raw["cameras"]))
        mqtt = parse_outputs(r, raw.get("outputs", {}), "outputs", len(ids)).mqtt
    except ConfigError:
        return None
    return None if mqtt is None or not ids else (store_id, ids, mqtt)


def send_status(mqtt_config, store_id: str, camera_id: str, payload: bytes,
                timeout: float = 10.0) -> str:
    """Publishes one retained status, as the camera itself would (its client id, user, TLS,
    the outgoing guard), and waits for the broker's acknowledgement. Returns the topic;
    raises ApplianceError."""
    from appliance.device.outputs import guard
    from appliance.device.outputs.mqtt import topics
    from appliance.mqtt_link import describe_connect_error, new_client, read_password

    topic = topics(mqtt_config.topic_prefix, store_id, camera_id)["status"]
    body = guard.check_status(payload)
    tls = None if mqtt_config.tls is None else \
        (mqtt_config.tls.ca, mqtt_config.tls.cert, mqtt_config.tls.key)
    client = new_client(mqtt_config.client_id_for(store_id, camera_id), mqtt_config.username,
                        read_password(mqtt_config.password_file), tls)
    answers: dict[str, object] = {}
    answered = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        answers["connect"] = reason_code
        answered.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        answers["publish"] = reason_code
        answered.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    where = f"mqtt {mqtt_config.host}:{mqtt_config.port}"
    try:
        client.connect(mqtt_config.host, mqtt_config.port, mqtt_config.keepalive)
    except (OSError, ValueError) as error:
        raise ApplianceError(f"{where}: {describe_connect_error(error)}") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise ApplianceError(f"{where}: no answer in {timeout:g} s")
        if answers["connect"].is_failure:
            raise ApplianceError(f"{where}: broker refused the connection: "
                                 f"{answers['connect']}")
        answered.clear()
        client.publish(topic, body, qos=1, retain=True)
        if not answered.wait(timeout):
            raise ApplianceError(f"{where}: {topic}: not acknowledged in {timeout:g} s")
        if answers["publish"].is_failure:
            raise ApplianceError(f"{where}: broker refused {topic}: {answers['publish']}")
        return topic
    finally:
        client.disconnect()
        client.loop_stop()


def report_config_error(boot: Path, etc: Path, wait_seconds: float = REPORT_WAIT_SECONDS,
                        retry_seconds: float = 5.0) -> int:
    """The config first boot judged (the card's, else the device's): when it is invalid,
    its line goes to every camera's status topic, retried while the network and the broker
    come up. Returns how many cameras it reached."""
    path = boot / CONFIG if (boot / CONFIG).exists() else etc / CONFIG
    try:
        check_config(path)
        return 0
    except ApplianceError as error:
        line = status_line(error, path)
    broker = broker_of(path)
    if broker is None:
        print("firstboot: the config error stays in the journal: its store_id, camera ids "
              "or outputs.mqtt cannot be read", flush=True)
        return 0
    store_id, ids, mqtt_config = broker
    deadline = time.monotonic() + wait_seconds
    reached = 0
    for camera_id in ids:
        while True:
            try:
                topic = send_status(mqtt_config, store_id, camera_id, line)
            except ApplianceError as error:
                if time.monotonic() + retry_seconds < deadline:
                    time.sleep(retry_seconds)
                    continue
                print(f"firstboot: config error not sent for camera {camera_id}: {error}",
                      flush=True)
                break
            print(f"firstboot: config error sent on {topic}", flush=True)
            reached += 1
            break
    return reached


def install_text(target: Path, text: str, gid: int) -> None:
    temporary = target.with_name(f".{target.name}.txt")
    temporary.write_text(text)
    try:
        install(temporary, target, 0o640, 0, gid)
    finally:
        temporary.unlink()


def hostname_for(store_id: str) -> str:
    """The box's hostname: its store's id, as a DNS label."""
    label = re.sub(r"[^a-z0-9-]+", "-", store_id.lower()).strip("-")
    return f"shopper-{label}"[:63].rstrip("-")


def set_hostname(name: str, etc_root: Path = Path("/etc")) -> None:
    (etc_root / "hostname").write_text(name + "\n")
    hosts = etc_root / "hosts"
    lines = [line for line in hosts.read_text().splitlines() if not line.startswith("127.0.1.1")]
    hosts.write_text("\n".join(lines + [f"127.0.1.1\t{name}"]) + "\n")
    socket.sethostname(name)


def fresh_ssh_host_keys() -> None:
    """The image carries no host keys (every card would share them): make this box's."""
    if not list(Path("/etc/ssh").glob("ssh_host_*_key")):
        subprocess.run(["ssh-keygen", "-A"], check=True, capture_output=True)
        print("firstboot: new ssh host keys", flush=True)


def grow_root() -> None:
    """The root partition and its ext4 to the end of the card (growpart: NOCHANGE is 1)."""
    source = subprocess.run(["findmnt", "-no", "SOURCE", "/"], capture_output=True,
                            text=True, check=True).stdout.strip()
    part = Path("/sys/class/block") / Path(source).name
    if not (part / "partition").exists():
        return
    disk = "/dev/" + part.resolve().parent.name
    number = (part / "partition").read_text().strip()
    grown = subprocess.run(["growpart", disk, number], capture_output=True, text=True)
    if grown.returncode == 0:
        subprocess.run(["resize2fs", source], check=True, capture_output=True)
        print(f"firstboot: root filesystem grown: {grown.stdout.strip()}", flush=True)
    elif "NOCHANGE" not in grown.stdout:
        print(f"firstboot: growpart {disk} {number}: {grown.stdout.strip()} "
              f"{grown.stderr.strip()}", flush=True)


def start_cameras(ids: tuple[str, ...]) -> None:
    """As install.sh: one enabled instance per camera id, others disabled, all started."""
    wants = Path("/etc/systemd/system/shopper-edge.target.wants")
    for link in wants.glob("shopper-edge@*.service"):
        if link.name.removeprefix("shopper-edge@").removesuffix(".service") not in ids:
            subprocess.run(["systemctl", "disable", "--now", link.name], check=True)
    units = [f"shopper-edge@{i}.service" for i in ids]
    subprocess.run(["systemctl", "enable", "shopper-edge.target", *units], check=True,
                   capture_output=True)
    if units:  # `systemctl restart` of no unit is an error
        subprocess.run(["systemctl", "restart", "--no-block", *units], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shopper-edge-firstboot",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--boot", type=Path, default=BOOT_DROP)
    parser.add_argument("--etc", type=Path, default=ETC)
    parser.add_argument("--report-config-error", action="store_true",
                        help="send an invalid config's line to the cameras' status topics "
                             f"(run by {REPORT_UNIT} once the network is up)")
    args = parser.parse_args(argv)
    if args.report_config_error:
        report_config_error(args.boot, args.etc)
        return 0
    fresh_ssh_host_keys()
    grow_root()
    gid = pwd.getpwnam(SERVICE_USER).pw_gid
    uid = pwd.getpwnam(SERVICE_USER).pw_uid
    take_admin_keys(args.boot)
    dropped = move_drop(args.boot, args.etc, uid, gid)
    if dropped is None:
        if not (args.etc / CONFIG).exists():
            print(f"firstboot: no device config: put {CONFIG} in {args.boot} on the boot "
                  "partition and reboot; counting nothing", flush=True)
        return 0  # the cameras already enabled start as on any boot
    try:
        ids = take_config(dropped, args.etc, gid)
    except ApplianceError as error:
        print(f"firstboot: {error}; counting nothing", flush=True)
        start_cameras(())
        # Ordered after network-online.target, so this boot is not held up.
        subprocess.run(["systemctl", "start", "--no-block", REPORT_UNIT], check=False)
        return 0
    set_hostname(hostname_for(check_config(args.etc / CONFIG).store_id))
    start_cameras(ids)
    print(f"firstboot: {args.etc / CONFIG} installed, hostname {socket.gethostname()}, "
          f"cameras {' '.join(ids)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
