"""A minimal SNTP server (RFC 4330) for the device twin's time sync: it answers every
request with this host's clock plus --offset seconds.

    python3 tests/ntp_server.py [--host 127.0.0.1] [--port 123] [--offset S]

Prints "READY" once bound. QEMU's user-mode network maps the guest's 10.0.2.2:123 to this
host's 127.0.0.1:123, where systemd-timesyncd in the twin (NTP=10.0.2.2) asks.
"""

import argparse
import socket
import struct
import sys
import time

NTP_EPOCH = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def ntp_time(unix: float) -> bytes:
    seconds = unix + NTP_EPOCH
    return struct.pack("!II", int(seconds), int((seconds % 1) * 2**32))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=123)
    parser.add_argument("--offset", type=float, default=0.0)
    args = parser.parse_args()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((args.host, args.port))
        print("READY", flush=True)
        while True:
            request, client = server.recvfrom(512)
            if len(request) < 48:
                continue
            received = time.time() + args.offset
            version = (request[0] >> 3) & 7
            # LI 0, the client's version, mode 4 (server); stratum 1, a GPS-like reference.
            header = struct.pack("!BBbb", (version << 3) | 4, 1, request[2], -20)
            reply = (header + struct.pack("!II", 0, 0) + b"GPS\0" + ntp_time(received)
                     + request[40:48] + ntp_time(received) + ntp_time(time.time() + args.offset))
            server.sendto(reply, client)


if __name__ == "__main__":
    sys.exit(main())
