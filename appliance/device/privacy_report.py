"""`shopper-edge privacy-report`: what a configured device sends, stores and infers.

Every field listed comes from the JSON Schemas the outgoing guard enforces (walked here, not
written down twice), so the report cannot drift from what the code lets out.
"""

from __future__ import annotations

from appliance.device.analytics.people import LINK_SECONDS
from appliance.device.capacity import DETECTOR_SHARE
from appliance.device.config import Config
from appliance.device.health import health_interval
from appliance.device.inference.models import load_manifest
from appliance.device.isolation import landlock_abi
from appliance.device.outputs.guard import validator

# What each model role computes, and what becomes of it.
INFERS = {
    "person_detector": "person boxes and scores on each frame; they feed the tracker in "
                       "memory and are dropped with the frame",
    "face_detector": "face boxes in the top of a person box, within faces_per_second; "
                     "dropped with the frame",
    "age_gender": "an age (and female/male) estimate per face seen; a person's estimates "
                  "become one age band count when their track ends and are dropped",
    "pose": "wrist points of people stopped at a shelf; they decide an interaction and are "
            "dropped",
}


def fields(schema: dict, root: dict | None = None, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, description) for every leaf the schema admits."""
    root = root or schema
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return fields(merged, root, prefix)
    if schema.get("type") == "object" or "properties" in schema:
        out = []
        for name, sub in schema.get("properties", {}).items():
            out += fields(sub, root, f"{prefix}.{name}" if prefix else name)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out += fields(extra, root, f"{prefix}.<name>" if prefix else "<name>")
        return out
    return [(prefix, _describe(schema))]


def _describe(schema: dict) -> str:
    kind = schema.get("type", "const" if "const" in schema else "enum" if "enum" in schema
                      else "value")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if "const" in schema:
        kind = f"always {schema['const']!r}"
    elif "enum" in schema:
        kind = "one of " + ", ".join(map(str, schema["enum"]))
    if kind == "array":
        kind = f"list of at most {schema.get('maxItems', '?')} {schema['items'].get('type')}s"
    text = schema.get("description", "")
    return f"{kind}: {text}" if text else kind


def report(config: Config) -> str:
    mqtt = config.outputs.mqtt
    manifest = load_manifest()
    p = config.privacy
    out = [f"# Privacy report for {config.path}", "",
           f"Store `{config.store_id}`, cameras: "
           + ", ".join(f"`{c.id}`" for c in config.cameras), ""]

    out += ["## What leaves the device", ""]
    if mqtt is not None:
        prefix = f"{mqtt.topic_prefix}/{config.store_id}"
        tls = "TLS" if mqtt.tls else "NO TLS (plain TCP)"
        out += [f"MQTT to {mqtt.host}:{mqtt.port} over {tls}, as user "
                f"`{mqtt.username or '(none)'}`. Per camera C:", "",
                f"- `{prefix}/C/counts`: one message per {config.window_seconds:g} s window "
                f"(QoS {mqtt.qos}, not retained), fields:"]
        out += [f"    - `{name}`: {text}" for name, text in fields(validator("counts").schema)]
        out += [f"- `{prefix}/C/status`: the word `online` or `offline` (retained); from a "
                "flashed box with an invalid config, `config-error: ` and the error's line "
                "(which key is wrong, no values of the config)",
                f"- `{prefix}/C/health`: at wall-clock multiples of "
                f"{health_interval(mqtt.health_seconds, config.window_seconds):g} s (whole "
                "windows; figures count from the first one after start, none on stop), "
                "fields:"]
        out += [f"    - `{name}`: {text}" for name, text in fields(validator("health").schema)]
    else:
        out += ["No network output is configured."]
    if config.outputs.jsonl:
        where = "standard output" if config.outputs.jsonl == "-" else config.outputs.jsonl
        if mqtt is not None:
            out += [f"- the same counts documents as JSON lines to {where}"]
        else:
            out += [f"Counts documents as JSON lines to {where}, one per "
                    f"{config.window_seconds:g} s window and camera, fields:"]
            out += [f"    - `{name}`: {text}" for name, text in
                    fields(validator("counts").schema)]
    lines = ", ".join(f"`{line.name}`" for c in config.cameras for line in c.lines)
    out += ["", f"Lines counted: {lines or 'none'}. Nothing else is ever sent: the guard "
            "refuses any other key, any array but `suppressed`, any long string.", ""]

    out += ["## Small counts", ""]
    if p.min_count > 1:
        out += [f"Counts from 1 to {p.min_count - 1} are sent as null and named in "
                "`suppressed`; where a total is published, another cell is hidden with them "
                "so that none can be derived by subtraction."]
    else:
        out += ["min_count is 1: small counts are sent exactly (evaluation setting; "
                "the device default is 5)."]
    if p.epsilon is not None:
        out += [f"Each count gets discrete Laplace noise of scale {p.sensitivity}/{p.epsilon:g}"
                f": every window is {p.epsilon:g}-differentially private for a person who "
                f"changes its counts by at most {p.sensitivity}."]
    else:
        out += ["No differential-privacy noise (privacy.epsilon is not set)."]
    out += ["", "k counts people, not track ids: the fragments of a track that broke (a new "
            "track starting near where one not seen since was last seen, within "
            f"{LINK_SECONDS:g} s) are one person for the visitor, zone, group, age and "
            "heatmap figures.",
            "", "Dwell and queue-wait percentiles are read off the published histogram "
            "(null when a bin or the visits are hidden, or with noise), so they never give "
            "one visit's time away.",
            "", "No field is finer than a window: `observed_seconds` is the window's length "
            "(0 in an outage), health goes out at wall-clock multiples of whole windows with "
            "figures counted from the first one after start, and no field says when inside a "
            "window the camera started or stopped."]
    if mqtt is not None:
        out[-1] += (" When messages arrive still does: the status is sent as the connection "
                    "comes and goes, and the last window at once on a clean stop, so the "
                    "broker and head office see a camera's start and stop to the second "
                    "(docs/privacy.md).")
    performance = config.performance
    if mqtt is not None:
        out += ["", "Health's load figures follow the camera, the rate cap and the time of one "
                "detector run, not people: `fps` and `frames_received` count every frame the "
                "camera delivers, processed or not, and `capacity_fps` and the adaptive cap "
                "come from the detector's time per run, which is the same whoever is in view."]
        if performance.adaptive_rate:
            out[-1] += (" Only if the people in view make frames cost more than the time the "
                        f"cap leaves beside the detector ({1 - DETECTOR_SHARE:.0%}; faces and "
                        "pose cost most) do frames wait in the stream, and `fps` dips in those "
                        "windows.")
        elif performance.motion_skip.enabled:
            out[-1] += (" Without `performance.adaptive_rate` the cap is the configured fps: "
                        "where `capacity_fps` is below it, motion skip runs the detector only "
                        "while something moves, so frames wait in the stream and `fps` dips "
                        "in the windows where people moved. Turn adaptive_rate on, or lower "
                        "the camera's fps to `capacity_fps`.")
    out += [""]

    out += ["## What is stored on the device", ""]
    if mqtt is not None:
        days = mqtt.spool_max_messages * config.window_seconds / 86400
        out += [f"- the spool, one SQLite file per camera: `{mqtt.spool_dir}/"
                f"{config.store_id}-<camera>.sqlite`, columns `seq` (order), `topic`, "
                "`payload` (a counts document exactly as above, already suppressed); a row "
                f"is deleted when the broker acknowledges it; at most "
                f"{mqtt.spool_max_messages} rows (about {days:.0f} days of windows), the "
                "oldest dropped first; and a count of dropped rows"]
    logs = ("logs (the journal) hold connection and stream events, and, because "
            "outputs.jsonl is standard output, the counts documents" if config.outputs.jsonl
            == "-" else "logs (the journal) hold connection and stream events, never counts")
    out += [f"- the model files in `{config.models.dir}` (read only)",
            f"- nothing else: no frames, crops, boxes, tracks or times finer than a window; "
            f"{logs}", ""]

    out += ["## Models that run and what they infer", ""]
    d = config.demographics
    running = [config.models.detector] + ([d.face_detector, "age_gender"] if d.enabled else
                                          []) + (["movenet"] if config.behaviour.pose else [])
    for name in running:
        spec = manifest[name]
        out += [f"- `{name}` ({spec.file}, sha256 {spec.sha256}, {spec.licence}): "
                f"{spec.role}: {INFERS.get(spec.role, spec.output)}"]
    isolation = ("runs in an empty network namespace and reaches only its camera"
                 if p.isolate_pixels else "is NOT isolated from the network "
                 "(privacy.isolate_pixels: false)")
    confined = ("cannot create or write any file (Landlock, ABI "
                f"{landlock_abi()} on this kernel)" if landlock_abi() else
                "could still write where the service may: this kernel has no Landlock")
    out += ["", f"The process that decodes frames and runs the models {isolation}; it "
            f"{confined}, and it is non-dumpable with core dumps off (no core file, and "
            "the unit keeps its memory out of swap); frames live in memory only until the "
            "detector has read them.", "",
            "`shopper-edge privacy-notice --config F` prints the matching notice for "
            "shoppers (Markdown, or `--format html` for a printable page)."]
    return "\n".join(out) + "\n"
