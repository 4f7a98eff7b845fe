"""The flashed card's boot (appliance/device/firstboot.py) against a directory tree: what the
installer drops on the FAT partition moves to /etc/shopper-edge with its owners and modes and
is gone from the card; a valid config names the cameras, an invalid one counts nothing and
stays on the card to be corrected, its secrets moved all the same."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from appliance.device import firstboot
from appliance.device.firstboot import hostname_for, move_drop, take_admin_keys, take_config
from appliance.errors import ConfigError

# As root (the service), files get the service user's ids; otherwise this user's.
UID, GID = (4242, 4343) if os.geteuid() == 0 else (os.getuid(), os.getgid())


@pytest.fixture
def card(tmp_path, write_config):
    """boot/shopper-edge as an installer leaves it; etc/ as the image has it (empty)."""
    drop = tmp_path / "boot" / "shopper-edge"
    (drop / "secrets").mkdir(parents=True)
    etc = tmp_path / "etc"
    etc.mkdir()
    (drop / "secrets" / "mqtt.password").write_text("front-secret\n")
    (drop / "secrets" / "client.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    (drop / "store-ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    config = yaml.safe_load(write_config().read_text())
    config["outputs"] = {"jsonl": None, "mqtt": {
        "host": "broker.store.lan", "username": "dev-front",
        "password_file": str(etc / "secrets" / "mqtt.password")}}
    config["store_id"] = "Store_0042"
    (drop / "device.yaml").write_text(yaml.safe_dump(config))
    return drop, etc


def mode_owner(path: Path) -> tuple[int, int, int]:
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def test_secrets_and_certificates_move_with_their_modes_and_leave_the_card(card):
    drop, etc = card
    config = move_drop(drop, etc, UID, GID)
    assert config == drop / "device.yaml"
    root = 0 if os.geteuid() == 0 else os.getuid()
    assert (etc / "secrets" / "mqtt.password").read_text() == "front-secret\n"
    assert mode_owner(etc / "secrets" / "mqtt.password") == (0o600, UID, GID)
    assert mode_owner(etc / "secrets" / "client.key") == (0o600, UID, GID)
    assert mode_owner(etc / "secrets") == (0o750, root, GID)
    assert mode_owner(etc / "store-ca.crt") == (0o640, root, GID)
    # Only the config is left on the card, until it is checked.
    assert sorted(p.name for p in drop.rglob("*")) == ["device.yaml"]


def test_a_valid_config_is_installed_with_its_camera_ids_and_leaves_the_card(card):
    drop, etc = card
    dropped = move_drop(drop, etc, UID, GID)
    text = dropped.read_text()
    assert take_config(dropped, etc, GID) == ("front",)
    assert (etc / "device.yaml").read_text() == text
    root = 0 if os.geteuid() == 0 else os.getuid()
    assert mode_owner(etc / "device.yaml") == (0o640, root, GID)
    assert (etc / "cameras").read_text() == "front\n"
    assert not dropped.exists()


def test_an_invalid_config_raises_one_line_and_stays_on_the_card(card):
    drop, etc = card
    raw = yaml.safe_load((drop / "device.yaml").read_text())
    raw["cameras"][0]["fps"] = -5
    (drop / "device.yaml").write_text(yaml.safe_dump(raw))
    dropped = move_drop(drop, etc, UID, GID)
    with pytest.raises(ConfigError) as error:
        take_config(dropped, etc, GID)
    assert "fps" in str(error.value) and "\n" not in str(error.value)
    assert dropped.exists()
    assert not (etc / "device.yaml").exists() and not (etc / "cameras").exists()
    # ... but its secrets are not left on the card.
    assert not (drop / "secrets").exists()
    assert (etc / "secrets" / "mqtt.password").exists()


def test_a_config_naming_a_secret_the_installer_forgot_is_invalid(card):
    drop, etc = card
    (drop / "secrets" / "mqtt.password").unlink()
    dropped = move_drop(drop, etc, UID, GID)
    with pytest.raises(ConfigError, match="password_file"):
        take_config(dropped, etc, GID)


def test_nothing_dropped_is_nothing_to_do(tmp_path):
    assert move_drop(tmp_path / "boot" / "shopper-edge", tmp_path, UID, GID) is None


def test_hostname_is_the_store_id_as_a_dns_label():
    assert hostname_for("Store_0042") == "shopper-store-0042"
    assert hostname_for("x" * 80) == "shopper-" + "x" * 55


ED25519 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8oX9bq3lJ5lV6gq3D0cE1tq0Y0nV6z9xkq8p0a1b2c "
           "admin@laptop")
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 installer"


def test_the_admins_keys_become_roots_and_leave_the_card(card, capsys):
    drop, etc = card
    keys = f"# the installer's laptop\n{ED25519}\n\n{RSA}\n"
    (drop / "authorized_keys").write_text(keys)
    ssh = etc / "root-ssh"
    take_admin_keys(drop, ssh)
    assert (ssh / "authorized_keys").read_text() == keys
    root = 0 if os.geteuid() == 0 else os.getuid()
    assert mode_owner(ssh / "authorized_keys")[:2] == (0o600, root)
    assert stat.S_IMODE(ssh.stat().st_mode) == 0o700
    assert not (drop / "authorized_keys").exists()
    assert "firstboot: 2 ssh key(s) for root installed from the card" in capsys.readouterr().out
    # Not a file for /etc/shopper-edge: the rest of the drop moves as before.
    move_drop(drop, etc, UID, GID)
    assert not (etc / "authorized_keys").exists()
    # A later card's file replaces them (how a key is revoked).
    (drop / "authorized_keys").write_text(RSA + "\n")
    take_admin_keys(drop, ssh)
    assert (ssh / "authorized_keys").read_text() == RSA + "\n"


@pytest.mark.parametrize("text, where", [
    (f"{ED25519}\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n", "line 2"),
    (f'command="sh" {ED25519}\n', "line 1"),
    ("# only a comment\n", "no key"),
])
def test_a_file_that_is_not_only_public_keys_installs_nothing_and_is_wiped(card, capsys, text,
                                                                          where):
    drop, etc = card
    (drop / "authorized_keys").write_text(text)
    ssh = etc / "root-ssh"
    take_admin_keys(drop, ssh)
    assert not ssh.exists()
    assert not (drop / "authorized_keys").exists()  # it may have been a private key
    assert capsys.readouterr().out == (f"firstboot: {drop / 'authorized_keys'}: {where}: "
                                       "not an ssh public key; no key installed\n")


def test_no_keys_file_leaves_root_as_it_is(card):
    drop, etc = card
    take_admin_keys(drop, etc / "root-ssh")
    assert not (etc / "root-ssh").exists()


def test_no_camera_starts_nothing_and_does_not_fail(monkeypatch, tmp_path):
    """An invalid config: the cameras are disabled and nothing is restarted (systemctl
    restart with no unit fails, which stopped the first boot before it reported the error)."""
    calls = []
    monkeypatch.setattr(firstboot.subprocess, "run",
                        lambda args, **kwargs: calls.append(args[:2]))
    firstboot.start_cameras(())
    assert calls == [["systemctl", "enable"]]
