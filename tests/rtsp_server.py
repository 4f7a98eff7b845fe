"""Minimal real RTSP server for tests: serves a recorded clip as a live H.264 stream.

Usage (Debian's system python, NOT the project venv -- it needs PyGObject):
    /usr/bin/python3 tests/rtsp_server.py --port 8554 --file clip.mpg [--mount /cam]

Serves rtsp://127.0.0.1:PORT/cam until killed and prints "READY" once listening.
With --once the clip is played one time (the mount is removed once a client's showing reached
the clip's end, so a reconnecting client is refused): what was counted must equal the clip's
truth.
Each client gets its own pipeline starting at the beginning of the clip, paced in real
time.  Elementary MPEG-1/2 video files (such as the CAVIAR .mpg clips) are looped
forever; other files (e.g. .mp4) are played once, then the stream ends.

Debian packages (apt-get install --no-install-recommends):
    python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
    gstreamer1.0-libav
"""

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--mount", default="/cam")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--once", action="store_true", help="one showing, to the first client")
    ap.add_argument("--slow", type=int, default=1,
                    help="play N times slower, at 25/N fps (a 25 fps clip's every frame once)")
    args = ap.parse_args()

    with open(args.file, "rb") as f:
        head = f.read(4)
    location = GLib.strescape(args.file)
    # MPEG-1/2 video ES: re-reading it forever is valid
    if head == b"\x00\x00\x01\xb3" and not args.once:
        src = f'multifilesrc location="{location}" loop=true'
    else:
        src = f'filesrc location="{location}"'

    # Slow motion for an emulated device (the twin): fewer frames to decode, none skipped.
    slow = (f"videorate rate={1 / args.slow} ! video/x-raw,framerate=25/{args.slow} ! "
            if args.slow > 1 else "")
    Gst.init(None)
    factory = GstRtspServer.RTSPMediaFactory()
    # sliced-threads=false: multi-slice H.264 (zerolatency's default) decodes smeared in
    # OpenCV's FFmpeg RTSP reader; one slice per frame decodes cleanly.
    factory.set_launch(
        f"( {src} ! decodebin ! {slow}videoconvert ! video/x-raw,format=I420 "
        "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 sliced-threads=false "
        "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(False)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    mounts.add_factory(args.mount, factory)
    if args.once:
        # Removed when a client's media has sent the clip's end (EOS), so the showing is
        # one whole play; a client that only looked (ffprobe before the decoder, as the
        # appliance does) and left does not use it up.
        def on_event(_pad, info):
            if info.get_event().type == Gst.EventType.EOS:
                GLib.idle_add(lambda: mounts.remove_factory(args.mount) and False)
            return Gst.PadProbeReturn.OK

        factory.connect("media-constructed", lambda _factory, media: media.get_element()
                        .get_by_name("pay0").get_static_pad("src")
                        .add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_event))
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    print("READY", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
