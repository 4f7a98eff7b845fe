"""shopper-edge: privacy-first retail analytics on the camera's own box."""

import os

__version__ = "0.1.0"

# OpenCV and FFmpeg write their own warnings to stderr (a corrupt file prints several);
# the appliance reports each problem itself as one line, so keep theirs to real errors.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# onnxruntime's Linux wheels (1.2x-1.3x) carry Microsoft's 1DS telemetry: without this it
# writes a device id and an event database under ~/.cache/Microsoft and may send them. An
# appliance that promises nothing leaves it must never load it switched on.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
