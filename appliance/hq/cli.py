"""The `shopper-hq` command: `subscribe` stores windows from the broker, `report` prints
footfall per store and camera (and draws charts with --plot). `serve` is the read-only web
dashboard over the same database; `plan set` stores the image a camera's heatmap is drawn
over.

User errors are one line `shopper-hq: error: ...` with exit status 2; a database failure
while subscribing exits with 3 after leaving the unstored window unacknowledged.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from appliance import __version__
from appliance.commands import Parser, describe, run_command
from appliance.errors import ApplianceError
from appliance.messages import TOPIC_PREFIX_PATTERN


def main(argv: list[str] | None = None) -> int:
    return run_command(_parser(), argv)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="shopper-hq", description=describe(__doc__))
    parser.add_argument("--version", action="version", version=f"shopper-hq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("subscribe", help="store every counts window from the broker")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, help="default 8883 with TLS, else 1883")
    p.add_argument("--prefix", default="shopper", help="topic prefix (default shopper)")
    p.add_argument("--client-id", default="shopper-hq",
                   help="unique per instance; the broker keeps this session's queue")
    p.add_argument("--username")
    p.add_argument("--password-file")
    p.add_argument("--tls", action="store_true", help="TLS with the system's trusted CAs")
    p.add_argument("--tls-ca", help="CA file that signed the broker's certificate (implies TLS)")
    p.add_argument("--tls-cert", help="client certificate")
    p.add_argument("--tls-key", help="client key")
    p.add_argument("--share", metavar="GROUP",
                   help="subscribe as $share/GROUP/...: instances in a group split the load")
    p.add_argument("--session-expiry", type=int, default=7 * 86400, metavar="SECONDS",
                   help="how long the broker queues windows while HQ is away (default 7 days)")
    p.add_argument("--db", default="shopper-hq.sqlite",
                   help="SQLite file or postgresql:// URL (default shopper-hq.sqlite)")
    p.set_defaults(func=cmd_subscribe)

    p = sub.add_parser("report", help="footfall, age profile and shopper behaviour per store "
                       "and camera")
    p.add_argument("--db", default="shopper-hq.sqlite")
    p.add_argument("--store")
    p.add_argument("--camera")
    p.add_argument("--since", help="first window start to include (ISO 8601 UTC)")
    p.add_argument("--until", help="window starts before this (ISO 8601 UTC)")
    p.add_argument("--tz", default="UTC", help="time zone of the hours (default UTC)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", metavar="DIR",
                   help="also write PNG charts per camera (footfall, heatmap) and per store "
                   "(age profile)")
    p.add_argument("--chain", action="store_true",
                   help="footfall and coverage per store and for the whole chain (one line "
                   "per store, summed by the database) instead of per camera")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="the read-only web dashboard over the stored windows")
    p.add_argument("--db", default="shopper-hq.sqlite",
                   help="SQLite file or postgresql:// URL (opened read-only)")
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (default "
                   "127.0.0.1:8080; port 0: any free port)")
    p.add_argument("--token-file", required=True,
                   help="file holding the access token (one word, 16+ characters)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("plan", help="the store plan image a camera's heatmap is drawn over")
    plan = p.add_subparsers(dest="plan_command", required=True)
    p = plan.add_parser("set", help="store a PNG or JPEG (the camera's plate from the setup "
                        "page) as the plan of a camera")
    p.add_argument("--db", default="shopper-hq.sqlite")
    p.add_argument("--store", required=True)
    p.add_argument("--camera", required=True)
    p.add_argument("image")
    p.set_defaults(func=cmd_plan_set)
    return parser


def cmd_subscribe(args) -> int:
    from appliance.hq.store import WindowStore
    from appliance.hq.subscriber import HqSubscriber, SubscriberConfig

    logging.basicConfig(level=logging.INFO, format="shopper-hq: %(message)s", stream=sys.stderr)
    if not TOPIC_PREFIX_PATTERN.match(args.prefix):
        raise ApplianceError(f"--prefix {args.prefix!r}: 1-4 topic levels of letters, digits, "
                             "'-' or '_' (no wildcards)")
    if args.share is not None and not TOPIC_PREFIX_PATTERN.match(args.share) or \
            args.share and "/" in args.share:
        raise ApplianceError(f"--share {args.share!r}: one topic level of letters, digits, "
                             "'-' or '_'")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ApplianceError("--tls-cert and --tls-key go together")
    files = {name: _existing(getattr(args, name), "--" + name.replace("_", "-"))
             for name in ("tls_ca", "tls_cert", "tls_key", "password_file")}
    if files["password_file"] and not args.username:
        raise ApplianceError("--password-file needs --username")
    tls = (files["tls_ca"], files["tls_cert"], files["tls_key"]) \
        if args.tls or args.tls_ca or args.tls_cert else None
    config = SubscriberConfig(
        host=args.host, port=args.port or (8883 if tls else 1883), topic_prefix=args.prefix,
        client_id=args.client_id, username=args.username,
        password_file=files["password_file"], tls=tls, share_group=args.share,
        session_expiry=args.session_expiry)
    store = WindowStore(args.db)
    subscriber = HqSubscriber(config, store)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    subscriber.start()
    while not stop.is_set() and not subscriber.done.is_set():
        stop.wait(0.5)
    subscriber.stop()
    store.close()
    s = subscriber.stats
    print(json.dumps({"stored": s.stored, "duplicates": s.duplicates, "rejected": s.rejected,
                      "statuses": s.statuses}), file=sys.stderr)
    if subscriber.failed is not None:
        print(f"shopper-hq: error: {subscriber.failed}", file=sys.stderr)
        return 3
    return 0


def cmd_report(args) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from appliance.hq.aggregate import build_reports
    from appliance.hq.render import as_json, format_text
    from appliance.hq.store import WindowStore

    try:
        zone = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApplianceError(f"--tz {args.tz!r}: unknown time zone") from None
    if not args.db.startswith(("postgresql://", "postgres://")) and not Path(args.db).is_file():
        raise ApplianceError(f"{args.db}: no such database (run shopper-hq subscribe first)")
    if args.chain and (args.camera or args.plot):
        raise ApplianceError("--chain: per store and chain only (no --camera, no --plot)")
    store = WindowStore(args.db)
    if args.chain:
        from appliance.hq.chain import chain_report, format_chain

        try:
            report = chain_report(store, args.store, args.since, args.until)
        finally:
            store.close()
        print(json.dumps(report, indent=1) if args.json else format_chain(report), flush=True)
        return 0
    try:
        reports = build_reports(store, zone, args.store, args.camera, args.since, args.until)
    finally:
        store.close()
    if args.json:
        print(json.dumps(as_json(reports), indent=1))
    else:
        print(format_text(reports, args.tz), flush=True)
    if args.plot:
        from appliance.hq.charts import plot

        for path in plot(reports, Path(args.plot), args.tz):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    from appliance.hq.dashboard import parse_listen, read_token, serve

    host, port = parse_listen(args.listen)
    token = read_token(Path(args.token_file))

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        serve(args.db, token, host, port)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_plan_set(args) -> int:
    import time

    from appliance.hq.plans import NAME_PATTERN, read_plan
    from appliance.hq.store import WindowStore
    from appliance.messages import iso

    for flag, value in (("--store", args.store), ("--camera", args.camera)):
        if not NAME_PATTERN.fullmatch(value):
            raise ApplianceError(f"{flag} {value!r}: letters, digits, - and _ only")
    media_type, image = read_plan(Path(args.image))
    if not args.db.startswith(("postgresql://", "postgres://")) and not Path(args.db).is_file():
        raise ApplianceError(f"{args.db}: no such database (run shopper-hq subscribe first)")
    store = WindowStore(args.db)
    try:
        store.set_plan(args.store, args.camera, media_type, image, iso(time.time()))
    finally:
        store.close()
    print(f"plan of {args.store}/{args.camera}: {args.image} ({len(image)} bytes)",
          file=sys.stderr)
    return 0


def _existing(value: str | None, flag: str) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file():
        raise ApplianceError(f"{flag} {value}: no such file")
    return path


if __name__ == "__main__":
    sys.exit(main())
