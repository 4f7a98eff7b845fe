# shopper-edge: installer and developer targets. On a fresh machine:
#   make demo   install, fetch the models from the mirror, replay a real clip, print counts
#   make test   install, fetch the models, run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MIRROR ?= ../shared/models
MODELS_DIR ?= var/models
CONFIG ?= examples/caviar-front.yaml
CLIP ?= ../shared/data/caviar_front/clips/OneLeaveShopReenter1front.mpg

.PHONY: install models demo test bench bench-hq lint clean system-deps stage deploy uninstall check-host \
  twin-deps twin twin-stop twin-test twin-ci image image-deps flash binfmt

# Device install (docs in `make stage` below): the tree to lay out, the device's config, the
# models to ship (names in models/manifest.yaml; empty: all), and the device's pip platform
# tags (empty: this machine's). A Raspberry Pi 4/5 on 64-bit Raspberry Pi OS 12 needs
# PLATFORM="manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64": onnxruntime >= 1.17 has no
# manylinux2014 aarch64 wheel, ai-edge-litert only a manylinux_2_27 one, and pip does not
# widen a manylinux_2_28 platform to the older tags.
DESTDIR ?= var/stage
DEVICE_CONFIG ?= examples/device.yaml
MODELS ?=
PLATFORM ?=
DEVICE_PYTHON ?= 3.11
# A Jetson (docs/jetson.md): NVIDIA's onnxruntime-gpu wheel, which the installer downloads
# from the Jetson Zoo, staged in place of PyPI's onnxruntime (checked against DEVICE_PYTHON
# and PLATFORM first).
ORT_WHEEL ?=
HOST ?=
# How deploy reaches HOST: e.g. SSH='ssh -F var/twin/amd64/ssh_config' for the twin.
SSH ?= ssh
# How deploy and uninstall become root there: SUDO= for HOST=root@... (an image-built box has
# root's ssh key from the card and no sudo, docs/image.md).
SUDO ?= sudo
STAGE_OPT = $(DESTDIR)/opt/shopper-edge
# What make deploy copies: only our own paths, never /etc or /usr themselves (their modes
# must stay the device's) and never /etc/shopper-edge/secrets (copied by hand).
STAGED = opt/shopper-edge etc/shopper-edge/device.yaml etc/shopper-edge/cameras \
  var/lib/shopper-edge/models usr/lib/systemd/system/shopper-edge@.service \
  usr/lib/systemd/system/shopper-edge.target usr/lib/sysusers.d/shopper-edge.conf \
  usr/lib/tmpfiles.d/shopper-edge.conf

$(BIN)/shopper-edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
# trackers (the bench's reference) asks for OpenCV's GUI build, which shares the cv2 module
# with the headless one and needs X11 libraries: take it without, and mend a venv that has it.
	$(BIN)/pip install --quiet --no-deps 'trackers>=2.0,<3'
	if $(BIN)/pip show --quiet opencv-python 2>/dev/null; then \
	  $(BIN)/pip uninstall --quiet --yes opencv-python && \
	  $(BIN)/pip install --quiet --force-reinstall --no-deps 'opencv-python-headless>=4.9'; fi
	touch $@

install: $(BIN)/shopper-edge

# Debian packages the tests need: a real RTSP server (GStreamer), an MQTT broker,
# PostgreSQL (HQ's optional store), each started by the tests on free ports, and systemd
# (systemd-analyze verify/security on the units; nothing is started), and Chromium with its
# WebDriver for the setup page's and the dashboard's browser tests (headless). `make test` installs
# the missing ones itself as root or with passwordless sudo, else names the command to run.
SYSTEM_PACKAGES = python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools \
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly gstreamer1.0-libav mosquitto postgresql systemd \
  chromium chromium-driver e2fsprogs ffmpeg fdisk zstd

system-deps:
	tools/system-deps.sh $(SYSTEM_PACKAGES)

models: install
	$(BIN)/shopper-edge models fetch --from $(MIRROR) --dir $(MODELS_DIR)

# The replay decodes the clip in an ffmpeg child, as the device does: the one Debian package
# the demo needs (installed as make test installs its own, or named in one line).
demo: models
	tools/system-deps.sh ffmpeg
	$(BIN)/shopper-edge replay $(CLIP) --config $(CONFIG)

test: system-deps models
	$(BIN)/python -m pytest -q

# docs/performance.md: speeds, cheaper frames, motion-skip CPU, FP32/INT8 back-ends and a
# 20,000-frame memory soak of one camera process (`shopper-edge bench --help`).
bench: models
	$(BIN)/python -m appliance.lab.bench --config $(CONFIG) --soak-frames 20000 \
	  --json bench-results/bench.json
	$(BIN)/python -m appliance.lab.mqtt_bytes --json bench-results/mqtt-bytes.json
	$(BIN)/python -m appliance.lab.decode_cost --json bench-results/decode-cost.json

# docs/hq.md: windows a second one `shopper-hq subscribe` (and two in a shared subscription)
# store into a real PostgreSQL from a real Mosquitto, lag p50/p99, nothing lost or twice;
# then the report of a store over HQ_REPORT_DAYS days (and of all HQ_REPORT_STORES stores,
# with more than one). About ten minutes on the loaded 2-core development machine.
# HQ_CHAIN_STORES=2000: then a chain-sized database (~4 GB, ~10 more minutes; docs/hq.md).
HQ_WINDOWS ?= 20000
HQ_REPORT_DAYS ?= 30
HQ_REPORT_STORES ?= 1
HQ_CHAIN_STORES ?= 0
bench-hq: install system-deps
	$(BIN)/python -m appliance.lab.bench_hq --windows $(HQ_WINDOWS) \
	  --report-days $(HQ_REPORT_DAYS) --report-stores $(HQ_REPORT_STORES) \
	  --chain-stores $(HQ_CHAIN_STORES) --json bench-results/hq.json

lint: install
	$(BIN)/ruff check appliance tests tools

# make stage DESTDIR=DIR [DEVICE_CONFIG=...] [MODELS=...] [PLATFORM=...] [DEVICE_PYTHON=...]
# [ORT_WHEEL=...]: the complete tree
# of a device under DIR: a wheelhouse (the app and its runtime dependencies, no hq/dev
# extras), install.sh and uninstall.sh, verified models, the config and its camera ids, the
# units, and MANIFEST.sha256 (paths relative to /). Rebuilt from scratch every time, so
# nothing stale is ever deployed; only our own paths under DIR are removed.
stage: install
	@test -n "$(DESTDIR)" || { echo "make stage: DESTDIR is empty" >&2; exit 2; }
	$(if $(ORT_WHEEL),$(BIN)/python tools/check_ort_wheel.py "$(ORT_WHEEL)" "$(DEVICE_PYTHON)" "$(PLATFORM)")
	rm -rf $(STAGE_OPT) $(DESTDIR)/etc/shopper-edge $(DESTDIR)/var/lib/shopper-edge \
	  $(DESTDIR)/usr/lib/systemd/system/shopper-edge@.service \
	  $(DESTDIR)/usr/lib/systemd/system/shopper-edge.target \
	  $(DESTDIR)/usr/lib/sysusers.d/shopper-edge.conf $(DESTDIR)/usr/lib/tmpfiles.d/shopper-edge.conf
	install -d -m 0755 $(STAGE_OPT) $(STAGE_OPT)/wheels
# setuptools packs whatever is in build/lib, deleted modules included: start clean.
	rm -rf build
	$(BIN)/pip wheel --quiet --no-deps . -w $(STAGE_OPT)/wheels
	$(BIN)/pip download --quiet --only-binary=:all: --implementation cp \
	  --python-version $(DEVICE_PYTHON) $(addprefix --platform ,$(PLATFORM)) \
	  -d $(STAGE_OPT)/wheels $(STAGE_OPT)/wheels/shopper_edge-*.whl
# onnxruntime-gpu installs the same onnxruntime module under its own name, with the same
# dependencies: it replaces the CPU wheel, and install.sh installs the app without its own.
	$(if $(ORT_WHEEL),rm -f $(STAGE_OPT)/wheels/onnxruntime-*.whl && \
	  install -m 0644 "$(ORT_WHEEL)" $(STAGE_OPT)/wheels/)
	install -m 0755 tools/install.sh tools/uninstall.sh $(STAGE_OPT)/
	install -D -m 0644 systemd/shopper-edge@.service \
	  $(DESTDIR)/usr/lib/systemd/system/shopper-edge@.service
	install -D -m 0644 systemd/shopper-edge.target $(DESTDIR)/usr/lib/systemd/system/shopper-edge.target
	install -D -m 0644 systemd/shopper-edge.sysusers $(DESTDIR)/usr/lib/sysusers.d/shopper-edge.conf
	install -D -m 0644 systemd/shopper-edge.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/shopper-edge.conf
	$(BIN)/shopper-edge models fetch --from $(MIRROR) --dir $(DESTDIR)/var/lib/shopper-edge/models \
	  $(MODELS)
	install -D -m 0640 $(DEVICE_CONFIG) $(DESTDIR)/etc/shopper-edge/device.yaml
	$(BIN)/python -c 'import sys, yaml; \
	  print(*(c["id"] for c in yaml.safe_load(open(sys.argv[1]))["cameras"]), sep="\n")' \
	  $(DEVICE_CONFIG) > $(DESTDIR)/etc/shopper-edge/cameras
	cd $(DESTDIR) && find $(STAGED) -type f ! -path opt/shopper-edge/MANIFEST.sha256 \
	  | LC_ALL=C sort | xargs sha256sum > opt/shopper-edge/MANIFEST.sha256

# make deploy HOST=user@device [PLATFORM=...] [SUDO=]: stage, copy the tree to the device's /
# and run install.sh there (the user needs passwordless sudo; root: HOST=root@... SUDO=).
# Secrets are never copied: the installer puts them in /etc/shopper-edge/secrets by hand,
# mode 0600, owner shopper-edge.
deploy: check-host stage
	$(SSH) $(HOST) $(SUDO) rm -rf /opt/shopper-edge/wheels
	cd $(DESTDIR) && if command -v rsync >/dev/null && $(SSH) $(HOST) command -v rsync >/dev/null; then \
	  rsync -a --relative --no-implied-dirs --no-owner --no-group --rsync-path='$(SUDO) rsync' \
	    -e "$(SSH)" $(STAGED) $(HOST):/; \
	else \
	  tar -cf - $(STAGED) | $(SSH) $(HOST) $(SUDO) tar -C / -xf - --no-same-owner --no-overwrite-dir; \
	fi
	$(SSH) $(HOST) $(SUDO) /opt/shopper-edge/install.sh

# make uninstall HOST=user@device [PURGE=yes]: stop and remove the service; config, secrets,
# spool, models and the user stay unless PURGE=yes. This release's uninstall.sh is piped to
# the device (the copy there removes itself, so a purge after an uninstall still works).
uninstall: check-host
	$(SSH) $(HOST) $(SUDO) sh -s -- $(if $(PURGE),--purge) < tools/uninstall.sh

# The device twin (docs/twin.md): a Debian 12 VM from Debian packages, under QEMU emulation.
# make twin [ARCH=arm64] builds (cached in var/twin/) and boots it and prints how to reach
# it; make twin-stop stops it; make twin-test boots its own, deploys and runs tests/twin.
ARCH ?= amd64
twin-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  mmdebstrap arch-test qemu-system-x86 qemu-system-arm qemu-user-static qemu-utils e2fsprogs \
	  openssh-client rsync >/dev/null
	python3 tools/twin/twin.py binfmt --arch $(ARCH)

twin:
	python3 tools/twin/twin.py start --arch $(ARCH)

twin-stop:
	python3 tools/twin/twin.py stop --arch $(ARCH)

twin-test: models
	$(BIN)/python -m pytest -q -m twin tests/twin

# CI's twin job (docs/twin.md): the essentials in 20-25 minutes here. The twin's image gets
# this release's wheelhouse installed at build time, natively, so `make deploy` (still the
# whole installer path) finds it installed instead of pip installing it under emulation; then
# active through READY=1 and the watchdog, security <= 2.0, the worker's namespaces, SIGKILL
# of the worker and of the publisher with nothing lost at HQ, and a clip counted exactly
# under the unit (a file camera: emulation is too slow for a live one) to HQ over TLS.
TWIN_CI_TESTS ?= ready or security or namespace or sigkill or file_clip
twin-ci: models
	$(MAKE) --no-print-directory stage DESTDIR=var/twin/stage-ci MODELS=yolox_nano
	TWIN_WHEELS=var/twin/stage-ci/opt/shopper-edge/wheels \
	  $(BIN)/python -m pytest -q -m twin tests/twin -k "$(TWIN_CI_TESTS)"

# The flashable image (docs/image.md): make image BOARD=generic-amd64|generic-arm64|rpi4
# [DEVICE_CONFIG=...] stages the appliance for the board's architecture and builds
# var/image/BOARD/shopper-edge-BOARD.img.zst (+ .sha256, .bmap, .manifest) with mmdebstrap
# (as root, like the twin). The config becomes shopper-edge/device.yaml on the card's FAT
# partition, for the installer to edit. An arm64 board on an x86 host needs binfmt_misc.
BOARD ?= generic-amd64
BOARD_ARCH = $(if $(filter generic-amd64,$(BOARD)),amd64,arm64)
ARM64_PLATFORM = manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64
image: $(if $(filter arm64,$(BOARD_ARCH)),binfmt)
	@case "$(BOARD)" in generic-amd64|generic-arm64|rpi4) ;; *) \
	  echo "make image: BOARD must be generic-amd64, generic-arm64 or rpi4, not '$(BOARD)'" >&2; \
	  exit 2;; esac
	$(MAKE) --no-print-directory stage DESTDIR=var/image/stage-$(BOARD_ARCH) \
	  DEVICE_CONFIG=$(DEVICE_CONFIG) MODELS="$(MODELS)" \
	  PLATFORM="$(if $(filter arm64,$(BOARD_ARCH)),$(ARM64_PLATFORM),$(PLATFORM))"
	tools/image/build-image.sh $(BOARD) var/image/stage-$(BOARD_ARCH) var/image/$(BOARD)

# What make image, make flash and the image's boot tests need on the build machine (Debian).
image-deps: twin-deps
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  dosfstools mtools fdisk bmap-tools zstd ovmf qemu-efi-aarch64 >/dev/null

# Running arm64 programs (the packages' maintainer scripts, pip) on an x86 host: qemu-user
# through binfmt_misc, registered here when missing (as root).
binfmt:
	tools/image/binfmt.sh

# make flash IMAGE=var/image/BOARD/shopper-edge-BOARD.img.zst DEVICE=/dev/sdX [FORCE=yes]:
# refuses a mounted device, the running system's disk and one over 256 GB (unless FORCE=yes),
# writes, then reads back and compares with the image's sha256.
flash:
	tools/image/flash.sh $(if $(filter yes,$(FORCE)),--force) "$(IMAGE)" "$(DEVICE)"

check-host:
	@test -n "$(HOST)" || { echo "make $(MAKECMDGOALS): needs HOST=user@device" >&2; exit 2; }

clean:
	rm -rf $(VENV) var bench-results build *.egg-info .pytest_cache .ruff_cache .hypothesis
