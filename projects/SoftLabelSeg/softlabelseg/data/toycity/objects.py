"""ToyCity object sprites: people, two-wheelers, vehicles, poles, traffic lights and signs, trees.

Each ``draw_*`` paints one object standing on the ground at world ``(X, Z)`` into a :class:`Canvas`.
Flat objects (people, bikes, signs) are drawn at their depth's scale; vehicles as projected boxes.
Class ids are Cityscapes train ids.
"""
from __future__ import annotations

import numpy as np

from .canvas import Camera, Canvas

(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEG, TERRAIN, SKY, PERSON, RIDER, CAR, TRUCK, BUS,
 TRAIN, MOTO, BIKE) = range(19)


def jitter(rng, base, amount: float = 12.0) -> np.ndarray:
    return np.clip(np.asarray(base, float) + rng.normal(0, amount, 3), 0, 255)


class Sprite:
    """Local 2D frame in metres (x right, y up) anchored at the ground point ``(X, Z)``; ``sx`` squeezes x."""

    def __init__(self, cv: Canvas, cam: Camera, X: float, Z: float, sx: float = 1.0, Y: float = 0.0):
        self.cv, self.k, self.sx = cv, cam.scale(Z), sx
        self.base = cam.project(X, Y, Z)

    def p(self, x, y) -> np.ndarray:
        return self.base + self.k * np.array([x * self.sx, -y])

    def bar(self, a, b, w, cls, color):
        self.cv.line(self.p(*a), self.p(*b), max(w * self.k, 0.05), cls, color)

    def poly(self, pts, cls, color):
        self.cv.poly([self.p(x, y) for x, y in pts], cls, color)

    def disc(self, c, r, cls, color, ring: float = -1, ry: float | None = None):
        axes = (r * self.k * self.sx, (ry or r) * self.k)
        self.cv.ellipse(self.p(*c), axes, cls, color, thickness=ring * self.k if ring > 0 else -1)


def draw_person(cv, cam, rng, X, Z, cls=PERSON, seated: bool = False, sx: float = 1.0):
    """Pedestrian (or, ``seated``, the upper body + bent legs of a rider) of random height and clothes."""
    s = Sprite(cv, cam, X, Z, sx)
    hp = rng.uniform(1.55, 1.95) * (0.62 if seated else 1.0)
    y0 = 0.55 if seated else 0.0  # seated riders start at the saddle
    skin, top, legs = jitter(rng, (200, 160, 130), 30), jitter(rng, rng.uniform(30, 220, 3), 20), \
        jitter(rng, rng.uniform(20, 120, 3), 15)
    hip, sh = y0 + (0.1 if seated else 0.5 * hp), y0 + (0.55 if seated else 0.82 * hp)
    stride = 0.0 if seated else rng.uniform(0.0, 0.3)
    for d in (-1, 1):
        if seated:
            s.bar((0.05 * d, hip), (0.25, hip - 0.3), 0.13, cls, legs)
            s.bar((0.25, hip - 0.3), (0.15 + 0.1 * d, 0.3), 0.11, cls, legs)
        else:
            s.bar((0.08 * d, hip), (d * (0.08 + stride / 2), 0.03), 0.13, cls, legs)
        hand = (0.35 * d + 0.3, hip - 0.05) if seated else (0.24 * d, hip - 0.05)
        s.bar((0.19 * d, sh - 0.03), hand, 0.08, cls, top)
    s.poly([(-0.16, hip), (0.16, hip), (0.2, sh), (-0.2, sh)], cls, top)
    head = sh + 0.14
    s.disc((0, head), 0.1, cls, skin, ry=0.125)
    hair = jitter(rng, (50, 35, 25), 25) if rng.random() < 0.8 else (40, 40, 40)
    s.disc((0, head + 0.05), 0.105, cls, hair, ry=0.07)
    if not seated and rng.random() < 0.3:
        s.poly([(0.18, hip + 0.25), (0.32, hip + 0.25), (0.32, hip - 0.05), (0.18, hip - 0.05)], cls,
               jitter(rng, (60, 50, 40), 30))


def draw_bicycle(cv, cam, rng, X, Z, sx=1.0, color=None):
    """Side-view bicycle (wheels are thin rings, frame bars ~4 cm); ``sx`` = |cos(yaw)| squeezes it."""
    s = Sprite(cv, cam, X, Z, sx)
    color = jitter(rng, rng.uniform(20, 230, 3), 10) if color is None else color
    dark = jitter(rng, (30, 30, 32), 5)
    R, F, B, S, H = (-0.52, 0.34), (0.52, 0.34), (0.0, 0.3), (-0.12, 0.88), (0.42, 0.9)
    for c in (R, F):
        s.disc(c, 0.33, BIKE, dark, ring=0.045)
    for a, b in ((R, B), (B, S), (S, H), (H, B), (R, S), (H, F)):
        s.bar(a, b, 0.035, BIKE, color)
    s.bar(H, (0.38, 1.02), 0.03, BIKE, dark)
    s.bar((-0.22, 0.92), (0.0, 0.92), 0.05, BIKE, dark)


def draw_motorcycle(cv, cam, rng, X, Z, sx=1.0):
    s = Sprite(cv, cam, X, Z, sx)
    dark, body = jitter(rng, (25, 25, 28), 4), jitter(rng, rng.uniform(20, 220, 3), 15)
    for c in ((-0.7, 0.31), (0.7, 0.31)):
        s.disc(c, 0.31, MOTO, dark, ring=0.1)
        s.disc(c, 0.09, MOTO, (150, 150, 155))
    s.poly([(-0.55, 0.45), (0.45, 0.4), (0.6, 0.75), (0.2, 0.9), (-0.6, 0.85)], MOTO, body)
    s.bar((0.55, 0.4), (0.45, 1.1), 0.06, MOTO, dark)


def draw_rider(cv, cam, rng, X, Z, motor: bool):
    """A cyclist or motorcyclist seen from a random yaw (side to nearly from behind)."""
    sx = rng.uniform(0.15, 1.0)
    (draw_motorcycle if motor else draw_bicycle)(cv, cam, rng, X, Z, sx)
    draw_person(cv, cam, rng, X, Z - 0.01, cls=RIDER, seated=True, sx=sx)


def draw_pole(cv, cam, rng, X, Z, height, width, color, arm: float = 0.0):
    """Vertical pole (class pole); ``arm`` > 0 adds a horizontal arm of that length towards the road."""
    s = Sprite(cv, cam, X, Z)
    s.bar((0, 0), (0, height), width, POLE, color)
    if arm:
        s.bar((0, height - 0.1), (arm, height - 0.1), width * 0.7, POLE, color)
    return s


def draw_traffic_light(sprite: Sprite, rng, x, y, lit=None):
    """Light box (0.32 x 0.9 m) centred at local (x, y) with three lamps, one lit."""
    box = jitter(rng, (35, 37, 35), 8)
    sprite.poly([(x - 0.16, y - 0.45), (x + 0.16, y - 0.45), (x + 0.16, y + 0.45), (x - 0.16, y + 0.45)],
                LIGHT, box)
    if rng.random() < 0.2:
        return  # seen from the back
    lit = rng.integers(3) if lit is None else lit
    on = [(235, 45, 35), (245, 180, 40), (60, 230, 120)]
    for i, dy in enumerate((0.28, 0.0, -0.28)):
        c = on[i] if i == lit else np.asarray(on[i]) * 0.25 + 20
        sprite.disc((x, y + dy), 0.1, LIGHT, c)


def draw_sign(cv, cam, rng, X, Z, height):
    """Sign on a thin post: disc, triangle, rectangle or diamond, ~0.6 m wide (class traffic sign)."""
    s = draw_pole(cv, cam, rng, X, Z, height, rng.uniform(0.04, 0.07), jitter(rng, (150, 152, 155), 15))
    y, kind = height - 0.3, rng.integers(5)
    red, white, blue = jitter(rng, (200, 30, 35), 12), jitter(rng, (235, 235, 230), 8), \
        jitter(rng, (30, 80, 170), 12)
    if kind == 0:
        s.disc((0, y), 0.32, SIGN, red)
        s.disc((0, y), 0.24, SIGN, white if rng.random() < 0.7 else blue)
    elif kind == 1:
        s.poly([(-0.35, y - 0.28), (0.35, y - 0.28), (0, y + 0.32)], SIGN, red)
        s.poly([(-0.24, y - 0.22), (0.24, y - 0.22), (0, y + 0.18)], SIGN, white)
    elif kind == 2:
        w = rng.uniform(0.25, 0.5)
        s.poly([(-w, y - 0.3), (w, y - 0.3), (w, y + 0.3), (-w, y + 0.3)], SIGN, blue)
        s.poly([(-0.06, y - 0.2), (0.06, y - 0.2), (0.06, y + 0.2), (-0.06, y + 0.2)], SIGN, white)
    elif kind == 3:
        s.poly([(0, y - 0.35), (0.35, y), (0, y + 0.35), (-0.35, y)], SIGN, jitter(rng, (240, 200, 30), 10))
    else:  # back side of a sign
        s.disc((0, y), 0.31, SIGN, jitter(rng, (120, 122, 125), 10))


def draw_tree(cv, cam, rng, X, Z, clumps: int = 1):
    """Trunk + clustered canopy (all vegetation, as Cityscapes labels trees); ``clumps`` > 1 splits the
    canopy into that many times more clumps, each 1/sqrt(clumps) the size: a more ragged outline."""
    s = Sprite(cv, cam, X, Z)
    h, green = rng.uniform(2.0, 3.5), jitter(rng, (70, 110, 40), 18)
    s.bar((0, 0), (0, h + 0.5), rng.uniform(0.18, 0.35), VEG, jitter(rng, (80, 65, 50), 10))
    r = rng.uniform(1.4, 2.8)
    size = r / np.sqrt(clumps)
    for _ in range(rng.integers(4, 8) * clumps):
        c = (rng.normal(0, r * 0.45), h + r + rng.normal(0, r * 0.35))
        rx, ry = size * rng.uniform(0.45, 0.8), size * rng.uniform(0.4, 0.75)
        s.disc(c, rx, VEG, green * rng.uniform(0.75, 1.2), ry=ry)


def _box(cv, cam, X0, X1, Y0, Y1, Z0, Z1, cls, color, side_dim=0.78):
    """An axis-aligned box: its visible side face, then the face towards the camera (at Z0)."""
    xs = X0 if (X0 + X1) / 2 > cam.x0 else X1
    if abs(xs - cam.x0) > 0.05 and (X0 > cam.x0 or X1 < cam.x0):
        q = cam.project([xs, xs, xs, xs], [Y0, Y1, Y1, Y0], [Z0, Z0, Z1, Z1])
        cv.poly(q, cls, np.asarray(color) * side_dim)
    cv.poly(cam.project([X0, X1, X1, X0], [Y0, Y0, Y1, Y1], Z0), cls, color)
    return xs


def _wheels(cv, cam, xs, zs, r, color):
    for zw in zs:
        t = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        cv.poly(cam.project(xs, r + r * np.sin(t), zw + r * np.cos(t)), None, color)


def draw_vehicle(cv, cam, rng, X, Z, kind: str, facing_us: bool = False):
    """Car / truck / bus / train as projected boxes with windows, lights, wheels and a ground shadow."""
    dims = {"car": (1.8, 1.45, 4.4), "truck": (2.45, 3.4, 8.0), "bus": (2.55, 3.1, 12.0),
            "train": (2.6, 3.5, 28.0)}
    w, h, L = np.asarray(dims[kind]) * rng.uniform(0.92, 1.08, 3)
    cls = {"car": CAR, "truck": TRUCK, "bus": BUS, "train": TRAIN}[kind]
    palettes = {"car": [(200, 200, 205), (25, 25, 28), (140, 142, 148), (150, 30, 30), (30, 50, 120),
                        (90, 95, 100), (220, 220, 215)],
                "truck": [(220, 220, 215), (180, 40, 30), (40, 70, 140), (200, 170, 40)],
                "bus": [(230, 200, 40), (200, 40, 40), (235, 235, 230), (40, 120, 180)],
                "train": [(225, 225, 220), (200, 40, 45)]}
    pal = palettes[kind]
    color = jitter(rng, pal[rng.integers(len(pal))], 10)
    X0, X1, Z1 = X - w / 2, X + w / 2, Z + L
    zs = [Z - 0.15, Z - 0.15, Z1 + 0.4, Z1 + 0.4]
    shadow = cam.project([X0 - 0.2, X1 + 0.2, X1 + 0.3, X0 - 0.3], 0.0, zs)
    cv.shade(shadow, rng.uniform(0.45, 0.7))
    glass, tyre = jitter(rng, (45, 55, 65), 8), (22, 22, 24)
    if kind == "car":
        xs = _box(cv, cam, X0, X1, 0.3, 0.95, Z, Z1, cls, color)
        _box(cv, cam, X0 + 0.12, X1 - 0.12, 0.95, h, Z + 0.9, Z1 - 1.1, cls, color)
        cv.poly(cam.project([X0 + 0.25, X1 - 0.25, X1 - 0.2, X0 + 0.2], [1.02, 1.02, h - 0.06, h - 0.06],
                            Z + 0.9), None, glass)
        _wheels(cv, cam, xs, (Z + 0.8, Z1 - 0.8), 0.32, tyre)
        for xx in (X0 + 0.05, X1 - 0.3):  # rear / front wheels under the near face
            cv.poly(cam.project([xx, xx + 0.25, xx + 0.25, xx], [0, 0, 0.32, 0.32], Z + 0.3), cls, tyre)
        lamp = (240, 240, 220) if facing_us else (200, 30, 30)
        for xx in (X0 + 0.1, X1 - 0.35):
            cv.poly(cam.project([xx, xx + 0.25, xx + 0.25, xx], [0.7, 0.7, 0.85, 0.85], Z - 0.01), None, lamp)
    else:
        lift = 0.35
        xs = _box(cv, cam, X0, X1, lift, h, Z, Z1, cls, color)
        n_win = int(L // 1.6) if kind in ("bus", "train") else 0
        for i in range(n_win):
            z0 = Z + 0.8 + i * 1.6
            if z0 + 1.2 < Z1:
                win = cam.project(xs, [1.3, h - 0.4, h - 0.4, 1.3], [z0, z0, z0 + 1.2, z0 + 1.2])
                cv.poly(win, None, glass)
        wy = (h * 0.55, h - 0.3) if kind != "truck" else (h - 0.2, h - 0.15)
        cv.poly(cam.project([X0 + 0.2, X1 - 0.2, X1 - 0.2, X0 + 0.2], [wy[0], wy[0], wy[1], wy[1]], Z - 0.01),
                None, glass)
        _wheels(cv, cam, xs, (Z + 1.2, Z1 - 1.5), 0.45, tyre)
        for xx in (X0 + 0.1, X1 - 0.4):
            cv.poly(cam.project([xx, xx + 0.3, xx + 0.3, xx], [0, 0, lift, lift], Z + 0.4), cls, tyre)
