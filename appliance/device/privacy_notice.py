"""`shopper-edge privacy-notice`: a short plain-language notice for the shop door.

It is written from the same things `privacy-report` reads, so it cannot promise more than
the device does: what each camera counts comes from a window document built by the real
aggregator for this config (and checked by the outgoing guard); suppression, noise, the
network and demographics from the config. Every part of a window that describes people
must have a sentence in `COUNTED` (a test walks the counts schema), so a new field cannot
leave the device without the notice saying so.
"""

from __future__ import annotations

import html

from appliance.device.camera_config import CameraConfig
from appliance.device.config import Config
from appliance.device.isolation import landlock_abi
from appliance.errors import ApplianceError

LANGUAGES = ("en",)

# What each part of a window document counts, for a shopper. Keys: the document's
# top-level fields that describe people.
COUNTED = {
    "lines": "how many people go in and out through the door",
    "zones": "how many people spend time in marked areas (such as a queue or a shelf), "
             "and for how long, in time bands",
    "journeys": "how many visitors there are, and how many of them stop at a shelf or "
                "reach the tills",
    "groups": "whether visitors come alone or in groups, and the group sizes",
    "heatmap": "which parts of the floor are busy (a coarse grid of the floor)",
    "age_bands": "the age band of visitors (such as 25-34), estimated from the face",
    "gender": "whether visitors look female or male, estimated from the face",
}
# Fields that describe the message itself, not people.
ABOUT_THE_MESSAGE = {"schema", "message_id", "store_id", "camera_id", "clock", "window_start",
                     "window_end", "observed_seconds", "partial", "frames", "suppressed"}


def window_parts(config: Config, camera: CameraConfig) -> list[str]:
    """The top-level fields of the window documents this camera sends: an empty window
    built by the real aggregator for this config, passed through the outgoing guard."""
    from appliance.device.analytics.behaviour import BehaviourWindow
    from appliance.device.outputs import guard
    from appliance.device.privacy import protect
    from appliance.device.window import WindowAggregator

    d = config.demographics
    windows = WindowAggregator(config.store_id, camera.id, [line.name for line in camera.lines],
                               config.window_seconds, "wall",
                               age_bands=d.band_names() if d.enabled else None,
                               gender=d.enabled and d.gender,
                               behaviour=BehaviourWindow(camera, config.behaviour, 640, 480),
                               min_people=config.privacy.min_count)
    windows.add(0.0, [])
    document = protect(windows.flush()[0], config.privacy)
    guard.check("counts", document, config.store_id, camera.id)
    return [key for key in document if key not in ABOUT_THE_MESSAGE]


def notice_sections(config: Config) -> tuple[str, list[tuple[str, list[str]]]]:
    """The notice as a title and (heading, paragraphs) sections, in English."""
    p, d, mqtt = config.privacy, config.demographics, config.outputs.mqtt
    parts: list[str] = []
    for camera in config.cameras:
        parts += [k for k in window_parts(config, camera) if k not in parts]
    minutes = config.window_seconds / 60
    every = "minute" if minutes == 1 else f"{minutes:g} minutes" if minutes > 1 else \
        f"{config.window_seconds:g} seconds"
    faces = d.enabled
    counted = [f"- {COUNTED[k]}" for k in parts]
    sections = [("What this camera counts", [
        "A computer inside this shop looks at the camera pictures to count people. It "
        "works out figures like these, for every " + every + ":", *counted,
        "It does not recognise anyone and does not know who you are."])]
    kept = ["The pictures are looked at in the computer's memory and then thrown away, "
            "picture by picture. No picture of a person, no face and no video is saved or "
            "sent anywhere. To set the counting up, the installer is shown only a view of "
            "the empty shop, with everyone left out."]
    if faces:
        kept.append("To estimate an age band, the computer looks at faces for a moment. It "
                    "keeps no face, no photo of it and no face template: only a tally of "
                    "age bands for the whole " + every + ".")
    else:
        kept.append("It does not look at faces.")
    if p.isolate_pixels:
        kept.append("The part of the computer that sees the pictures is cut off from the "
                    "network, so pictures cannot be sent even by mistake.")
    if landlock_abi():  # this kernel confines the pixel worker (isolation.py)
        kept.append("That part cannot save any file either, so pictures cannot be stored "
                    "even by mistake.")
    sections.append(("No images or faces are kept or sent", kept))
    leaves = []
    if mqtt is not None:
        link = "an encrypted connection" if mqtt.tls is not None else \
            "the shop's network (not encrypted)"
        leaves.append(f"Only the counts leave this computer, over {link}, to the company's "
                      "office, together with technical figures about the computer itself "
                      "(such as its temperature), which say nothing about people.")
    else:
        leaves.append("Nothing leaves this computer over the network; the counts stay on it.")
    if p.min_count > 1:
        leaves.append(f"A count of fewer than {p.min_count} people is never reported: it is "
                      "sent as \"unknown\", so no figure is about one person or a few.")
    if p.epsilon is not None:
        leaves.append("A little random noise is added to every count, so that no one's "
                      "presence can be worked out from the figures.")
    sections.append(("What leaves this shop", leaves))
    contact = p.contact or "the shop's staff, who will put you in touch with the person " \
        "responsible for data protection"
    sections.append(("Questions", [f"Please ask {contact}."]))
    return "People counting in this shop", sections


def render(config: Config, lang: str = "en", form: str = "markdown") -> str:
    if lang not in LANGUAGES:
        raise ApplianceError(f"--lang {lang}: no notice in that language (available: "
                         f"{', '.join(LANGUAGES)})")
    title, sections = notice_sections(config)
    if form == "markdown":
        out = [f"# {title}", ""]
        for heading, paragraphs in sections:
            out += [f"## {heading}", ""]
            for text, following in zip(paragraphs, paragraphs[1:] + [""], strict=True):
                # A list's items stay together; anything else ends with a blank line.
                together = text.startswith("- ") and following.startswith("- ")
                out += [text] if together else [text, ""]
        return "\n".join(out).rstrip() + "\n"
    body = []
    for heading, paragraphs in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        items = []
        for text in paragraphs + [""]:
            if text.startswith("- "):
                items.append(f"<li>{html.escape(text[2:])}</li>")
                continue
            if items:
                body.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if text:
                body.append(f"<p>{html.escape(text)}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>"
            "@page{size:A4;margin:2cm}body{font:16pt/1.4 sans-serif;max-width:40em;"
            "margin:auto}h1{font-size:28pt}h2{font-size:19pt;margin-bottom:.2em}"
            "</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n")
