"""Multi-object-tracking metrics: CLEAR-MOT (MOTA, MOTP) and identity metrics (IDF1).

Reimplements the semantics of py-motmetrics (cheind/py-motmetrics) in plain numpy + scipy,
because motmetrics itself does not work with numpy 2. Results match its
``compare_to_groundtruth(gt, hyp, "iou", distth=0.5)`` + ``compute_metrics`` output.

A sequence is a dict ``frame -> (ids (N,), boxes_xywh (N, 4), scores (N,))`` with boxes
given as top-left x, y, width, height in pixels.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

Frame = tuple[np.ndarray, np.ndarray, np.ndarray]
Sequence = dict[int, Frame]

_EMPTY: Frame = (np.empty(0, np.int64), np.empty((0, 4)), np.empty(0))


def _group_by_frame(frames: np.ndarray, ids: np.ndarray, boxes: np.ndarray,
                    scores: np.ndarray) -> Sequence:
    order = np.argsort(frames, kind="stable")  # stable: keep the file's row order per frame
    frames, ids, boxes, scores = frames[order], ids[order], boxes[order], scores[order]
    uniq, starts = np.unique(frames, return_index=True)
    ends = np.append(starts[1:], len(frames))
    return {int(f): (ids[s:e], boxes[s:e], scores[s:e])
            for f, s, e in zip(uniq, starts, ends, strict=True)}


def read_mot_txt(path: str | Path, is_truth: bool = False) -> Sequence:
    """Read a MOTChallenge text file (``frame,id,x,y,w,h,conf,...``; comma or whitespace).

    With ``is_truth`` rows whose "consider" flag (column 7) is 0 are dropped, and for
    MOT16/17/20 ground truth (exactly 9 columns, column 8 = class) only pedestrians
    (class 1) are kept. Detection files (det.txt) carry id -1.
    """
    rows = [line.replace(",", " ").split() for line in Path(path).read_text().splitlines()]
    rows = [r for r in rows if r]
    if not rows:
        return {}
    width = min(len(r) for r in rows)  # tolerate ragged trailing columns
    data = np.array([r[:width] for r in rows], dtype=float)
    if is_truth and width >= 7:
        keep = data[:, 6] != 0
        # MOT15 gt has 10 columns whose 8-10 are world coordinates, not a class.
        if width == 9:
            keep &= data[:, 7] == 1
        data = data[keep]
    scores = data[:, 6] if width >= 7 else np.ones(len(data))
    return _group_by_frame(data[:, 0].astype(np.int64), data[:, 1].astype(np.int64),
                           data[:, 2:6].copy(), scores.copy())


def read_cvml_xml(path: str | Path, frame_offset: int = 0) -> Sequence:
    """Read CVML/CAVIAR ground truth XML (PETS09); boxes there are centre-based."""
    frames, ids, boxes = [], [], []
    for frame in ET.parse(path).getroot().iter("frame"):
        number = int(frame.get("number")) + frame_offset
        for obj in frame.iter("object"):
            box = obj.find("box")
            w, h = float(box.get("w")), float(box.get("h"))
            xc, yc = float(box.get("xc")), float(box.get("yc"))
            frames.append(number)
            ids.append(int(obj.get("id")))
            boxes.append((xc - w / 2, yc - h / 2, w, h))
    if not frames:
        return {}
    return _group_by_frame(np.array(frames, np.int64), np.array(ids, np.int64),
                           np.array(boxes, float).reshape(-1, 4), np.ones(len(frames)))


def read_truth(path: str | Path, frame_offset: int = 0) -> Sequence:
    """Read ground truth: ``.xml`` as CVML, anything else as MOT text (frames shifted)."""
    if Path(path).suffix.lower() == ".xml":
        return read_cvml_xml(path, frame_offset)
    seq = read_mot_txt(path, is_truth=True)
    return {f + frame_offset: v for f, v in seq.items()}


def iou_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise ``1 - IoU`` of xywh boxes, computed as motmetrics does (bit-identical)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    iw = np.maximum(np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
                    - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0)
    ih = np.maximum(np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
                    - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0)
    inter = iw * ih
    area_a = np.maximum(a[:, 2], 0.0) * np.maximum(a[:, 3], 0.0)
    area_b = np.maximum(b[:, 2], 0.0) * np.maximum(b[:, 3], 0.0)
    union = area_a[:, None] + area_b[None, :] - inter
    iou = np.zeros_like(inter)
    np.divide(inter, union, out=iou, where=inter != 0.0)
    return 1.0 - iou


def _ratio(num: float, den: float) -> float:
    return float(num) / den if den else float("nan")


def evaluate(truth: Sequence, hypotheses: Sequence, iou_threshold: float = 0.5) -> dict:
    """CLEAR-MOT and ID metrics of ``hypotheses`` against ``truth`` (py-motmetrics semantics).

    Every frame present in either sequence counts. ``motp`` is motmetrics' distance form,
    the mean ``1 - IoU`` over matches (lower is better). Ratios with a zero denominator
    are NaN.
    """
    max_dist = 1.0 - iou_threshold
    prev: dict[int, int] = {}  # gt id -> hyp id matched in the previously evaluated frame
    last: dict[int, int] = {}  # gt id -> hyp id of its most recent match ever (for switches)
    seen = defaultdict(int)  # gt id -> frames it appears in
    tracked = defaultdict(int)  # gt id -> frames it was matched in
    was_tracked: dict[int, bool] = {}  # gt id -> matched at its previous appearance
    open_gap: set[int] = set()  # gt ids lost after being tracked; a re-match is a fragment
    pair_o, pair_h = [], []  # (gt id, hyp id) co-occurrences with IoU >= threshold, for IDF1
    n_truth = n_hyp = n_match = n_switch = n_frag = 0
    dist_sum = 0.0
    frames = sorted(set(truth) | set(hypotheses))
    for frame in frames:
        oids, oboxes, _ = truth.get(frame, _EMPTY)
        hids, hboxes, _ = hypotheses.get(frame, _EMPTY)
        n_truth += len(oids)
        n_hyp += len(hids)
        dist = iou_distance(oboxes, hboxes)
        ok = dist <= max_dist  # motmetrics sets dist > max_iou to NaN ("do not pair")
        rows, cols = np.nonzero(ok)
        pair_o.append(oids[rows])
        pair_h.append(hids[cols])

        matches: dict[int, int] = {}  # row -> col
        if ok.any():
            # 1. Carry forward last frame's matches that still overlap enough.
            col_of = {int(h): j for j, h in reversed(list(enumerate(hids)))}  # first wins
            for i, o in enumerate(oids.tolist()):
                j = col_of.get(prev.get(o, None), -1)
                if j >= 0 and ok[i, j] and j not in matches.values():
                    matches[i] = j
            # 2. Hungarian on what is left; forbidden pairs get a cost no valid
            #    assignment can reach, exactly like motmetrics' sparse solver.
            free = ok.copy()
            free[list(matches), :] = False
            free[:, list(matches.values())] = False
            if free.any():
                big = 2 * min(free.shape) * (np.abs(dist[free]).max() + 1) + 1
                for i, j in zip(*linear_sum_assignment(np.where(free, dist, big)), strict=True):
                    if free[i, j]:
                        o, h = int(oids[i]), int(hids[j])
                        n_switch += o in last and last[o] != h
                        matches[i] = j

        prev = {}
        for i, j in matches.items():
            o, h = int(oids[i]), int(hids[j])
            prev[o] = last[o] = h
            dist_sum += dist[i, j]
        n_match += len(matches)
        for i, o in enumerate(oids.tolist()):
            hit = i in matches
            seen[o] += 1
            tracked[o] += hit
            if hit and o in open_gap:
                n_frag += 1
                open_gap.discard(o)
            elif not hit and was_tracked.get(o, False):
                open_gap.add(o)
            was_tracked[o] = hit

    # IDF1: best one-to-one gt-id <-> hyp-id assignment maximising co-occurring matches.
    # Equivalent to motmetrics' (no+nh)^2 matrix with dummy FP/FN nodes, whose cost is
    # sum(gt counts) + sum(hyp counts) - 2 * sum(matched true positives).
    idtp = 0
    if pair_o and sum(len(p) for p in pair_o):
        po, ph = np.concatenate(pair_o), np.concatenate(pair_h)
        uo, io = np.unique(po, return_inverse=True)
        uh, ih = np.unique(ph, return_inverse=True)
        tp = np.zeros((len(uo), len(uh)))
        np.add.at(tp, (io, ih), 1)
        r, c = linear_sum_assignment(tp, maximize=True)
        idtp = int(tp[r, c].sum())

    ratios = np.array([tracked[o] / seen[o] for o in seen])
    n_fp, n_miss = n_hyp - n_match, n_truth - n_match
    out = {
        "mota": 1.0 - _ratio(n_miss + n_switch + n_fp, n_truth),
        "motp": _ratio(dist_sum, n_match),
        "idf1": _ratio(2 * idtp, n_truth + n_hyp),
        "idp": _ratio(idtp, n_hyp),
        "idr": _ratio(idtp, n_truth),
        "precision": _ratio(n_match, n_hyp),
        "recall": _ratio(n_match, n_truth),
        "id_switches": n_switch,
        "fragmentations": n_frag,
        "false_positives": n_fp,
        "misses": n_miss,
        "matches": n_match,
        "num_truth": n_truth,
        "num_hypotheses": n_hyp,
        "num_frames": len(frames),
        "num_truth_ids": len(seen),
        "mostly_tracked": int((ratios >= 0.8).sum()),
        "partially_tracked": int(((ratios >= 0.2) & (ratios < 0.8)).sum()),
        "mostly_lost": int((ratios < 0.2).sum()),
    }
    return {k: round(float(v), 6) if isinstance(v, float) else v for k, v in out.items()}


def track_sequence(detections: Sequence, fps: float, tracker, every: int = 1) -> Sequence:
    """Run a tracker over public detections, every `every`th frame (a lower processing
    rate); returns its output as a sequence (xywh boxes)."""
    from appliance.device.detect.detections import Detections

    out: Sequence = {}
    if not detections:
        return out
    for frame in range(min(detections), max(detections) + 1, every):
        _, xywh, scores = detections.get(frame, (None, np.zeros((0, 4)), np.zeros(0)))
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32)
        tracks = tracker.update(Detections(xyxy, scores.astype(np.float32)), frame / fps)
        if len(tracks):
            boxes = tracks.xyxy.astype(np.float64)
            boxes[:, 2:] -= boxes[:, :2]
            out[frame] = (tracks.ids.copy(), boxes, tracks.scores.astype(np.float64))
    return out


def kept_frames(truth: Sequence, detections: Sequence, every: int) -> Sequence:
    """The truth on the frames a tracker run every `every`th detection frame looked at."""
    first = min(detections) if detections else 0
    return {f: v for f, v in truth.items() if (f - first) % every == 0}


def sequence_fps(detections_path: str | Path, default: float = 25.0) -> float:
    """The frame rate from a MOTChallenge seqinfo.ini beside (or above) the file, else 25."""
    import configparser

    path = Path(detections_path).resolve()
    for folder in (path.parent, path.parent.parent):
        info = folder / "seqinfo.ini"
        if info.is_file():
            parser = configparser.ConfigParser()
            parser.read(info)
            rate = parser.get("Sequence", "frameRate", fallback=None)
            if rate:
                return float(rate)
    return default


def load_sequence(path: str | Path, truth: bool = False, frame_offset: int = 0) -> Sequence:
    """Read a sequence, turning any unreadable or malformed file into one clear error."""
    from appliance.errors import ApplianceError

    try:
        if truth:
            return read_truth(path, frame_offset)
        return read_mot_txt(path)
    except FileNotFoundError:
        raise ApplianceError(f"{path}: no such file") from None
    except (OSError, ValueError, IndexError, ET.ParseError) as error:
        raise ApplianceError(f"{path}: not a MOTChallenge text or CVML XML file ({error})") \
            from None
