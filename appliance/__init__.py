"""shopper-edge: privacy-first retail analytics on the camera's own box."""

import os

__version__ = "0.1.0"

# OpenCV and FFmpeg write their own warnings to stderr (a corrupt file prints several);
# the appliance reports each problem itself as one line, so keep theirs to real errors.
os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
