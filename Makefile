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

.PHONY: install models demo test bench lint clean system-deps

$(BIN)/shopper-edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/shopper-edge

# Debian packages the tests need: a real RTSP server (GStreamer), an MQTT broker and
# PostgreSQL (HQ's optional store); the tests start their own instances on free ports.
system-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base \
	  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
	  gstreamer1.0-libav \
	  mosquitto postgresql >/dev/null

models: install
	$(BIN)/shopper-edge models fetch --from $(MIRROR) --dir $(MODELS_DIR)

demo: models
	$(BIN)/shopper-edge replay $(CLIP) --config $(CONFIG)

test: models
	$(BIN)/python -m pytest -q

bench: models
	$(BIN)/shopper-edge bench --config $(CONFIG) --json bench-results/bench.json
	$(BIN)/python tools/mqtt_bytes.py --json bench-results/mqtt-bytes.json

lint: install
	$(BIN)/ruff check appliance tests tools

clean:
	rm -rf $(VENV) var bench-results .pytest_cache .ruff_cache
