"""ToyCity street scenes: layout (sky, road, sidewalks, buildings or park), street objects, camera effects.

``render_scene(rng, height, width)`` -> (RGB uint8 (H, W, 3), Cityscapes train ids uint8 (H, W)).
The layout varies per scene (camera height / focal length / horizon, street widths, which side has
buildings, object counts, positions and colours), so a model has to generalise across scenes.

Two scene styles (``SCENE_STYLES``): ``clean`` and ``cluttered``. A cluttered scene has the camera and
street layout of the clean scene of the same seed and is harder in three ways: twice the street furniture,
trees, people, riders and two-wheelers (more classes per cell), tree canopies of four times as many, smaller
leaf clumps (ragged, mixed boundaries), and a label displaced from the image by a smooth field of 1 output
pixel RMS per axis (annotation error, as when polygons are drawn by hand). The clean style draws exactly
the random numbers it always drew.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import cv2
import numpy as np

from .canvas import IGNORE, Camera, Canvas, block_majority
from .objects import (
    BUILDING,
    FENCE,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEG,
    WALL,
    draw_bicycle,
    draw_motorcycle,
    draw_person,
    draw_pole,
    draw_rider,
    draw_sign,
    draw_traffic_light,
    draw_tree,
    draw_vehicle,
    jitter,
)

__all__ = ["SCENE_STYLES", "SceneStyle", "render_scene", "scene_style"]


@dataclasses.dataclass(frozen=True)
class SceneStyle:
    """How hard a scene is. ``density``: multiplier on street-item counts; ``leaf_clumps``: canopy clumps
    per clean clump (each smaller, same total area); ``label_shift_px``: RMS per axis of the smooth
    displacement between label and image, in output pixels (0: the label matches the image exactly)."""

    density: float = 1.0
    leaf_clumps: int = 1
    label_shift_px: float = 0.0


SCENE_STYLES = {"clean": SceneStyle(),
                "cluttered": SceneStyle(density=2.0, leaf_clumps=4, label_shift_px=1.0)}


def scene_style(name: str) -> SceneStyle:
    """The entry of ``SCENE_STYLES`` called ``name``; an unknown name raises, listing the known ones."""
    if name not in SCENE_STYLES:
        raise ValueError(f"unknown ToyCity scene style {name!r}; choose one of {sorted(SCENE_STYLES)}")
    return SCENE_STYLES[name]


FAR = 400.0
# per-class texture: (fine grain amplitude in grey levels, low-frequency relative shading)
_TEXTURE = np.array(
    [(5, .08), (6, .06), (5, .10), (5, .08), (4, .05), (3, .05), (3, .03), (3, .03), (22, .20), (12, .15),
     (1.5, .04), (5, .06), (5, .06), (4, .05), (4, .05), (4, .05), (4, .05), (4, .05), (4, .05)]
    + [(3, .05)] * 237, np.float32)


def _quad_ground(cam, X0, X1, Z0, Z1, Y=0.0):
    """Ground-plane quads; array arguments give an (n, 4, 2) stack."""
    X0, X1, Z0, Z1 = (np.asarray(v, float)[..., None] for v in (X0, X1, Z0, Z1))
    return cam.project(np.concatenate(np.broadcast_arrays(X0, X1, X1, X0), -1), Y,
                       np.concatenate(np.broadcast_arrays(Z0, Z0, Z1, Z1), -1))


def _quad_wall(cam, X, Y0, Y1, Z0, Z1):
    """Quads in the vertical plane at X (facades, fences); array arguments give an (n, 4, 2) stack."""
    Y0, Y1, Z0, Z1 = (np.asarray(v, float)[..., None] for v in (Y0, Y1, Z0, Z1))
    return cam.project(X, np.concatenate(np.broadcast_arrays(Y0, Y1, Y1, Y0), -1),
                       np.concatenate(np.broadcast_arrays(Z0, Z0, Z1, Z1), -1))


def _sky(cv: Canvas, cam: Camera, rng):
    top, low = (jitter(rng, (70, 125, 195), 15), jitter(rng, (175, 195, 220), 12))
    if rng.random() < 0.3:  # overcast
        top, low = jitter(rng, (150, 155, 165), 12), jitter(rng, (200, 202, 208), 8)
    rows = cv.color.shape[0]
    t = np.clip(np.arange(rows) / max(cam.horizon * cv.ss, 1), 0, 1)[:, None] ** 0.8
    cv.fill_rows(0, cam.horizon + 2, (top * (1 - t) + low * t).astype(np.uint8), SKY)
    for _ in range(rng.integers(0, 5)):  # clouds are sky too
        c = (rng.uniform(0, cv.width), rng.uniform(0, cam.horizon * 0.8))
        cv.ellipse(c, (rng.uniform(20, 80), rng.uniform(5, 15)), None, jitter(rng, (225, 228, 232), 6))


def _ground(cv, cam, st, rng):
    """Terrain everywhere, then sidewalks, road, curbs, markings; returns nothing (paints the canvas)."""
    cv.poly(_quad_ground(cam, -80, 80, 0.5, FAR), TERRAIN, jitter(rng, (120, 135, 70), 15))
    for side in (-1, 1):
        edge, sw, tw = st["edge"][side], st["sidewalk"][side], st["terrain"][side]
        pave = jitter(rng, (150, 145, 140), 15)
        outer = edge + side * (sw + tw + 40) if st["kind"][side] == "buildings" else edge + side * sw
        cv.poly(_quad_ground(cam, edge, outer, 0.5, FAR, 0.12), SIDEWALK, pave)
        if tw > 0:
            a = edge + side * sw
            grass = jitter(rng, (110, 140, 60), 15)
            cv.poly(_quad_ground(cam, a, a + side * tw, 0.5, FAR, 0.12), TERRAIN, grass)
        z = np.arange(1.0, 60.0, rng.uniform(0.8, 1.5))  # paving joints (colour only)
        cv.polys(_quad_ground(cam, edge, edge + side * sw, z, z + 0.04, 0.12), None, pave * 0.85)
        cv.poly(cam.project(edge, [0, 0.12, 0.12, 0], [0.5, 0.5, FAR, FAR]), SIDEWALK, pave * 1.1)  # curb
    asphalt = jitter(rng, (95, 95, 100), 10)
    cv.poly(_quad_ground(cam, st["edge"][-1], st["edge"][1], 0.5, FAR), ROAD, asphalt)
    for _ in range(rng.integers(0, 4)):  # patches
        x, z = rng.uniform(st["edge"][-1], st["edge"][1]), rng.uniform(3, 60)
        cv.poly(_quad_ground(cam, x, x + rng.uniform(1, 4), z, z + rng.uniform(1, 8)), None, asphalt * 0.85)
    paint = jitter(rng, (225, 225, 215), 8)
    dash, gap = rng.uniform(2, 4), rng.uniform(4, 9)
    z = np.arange(rng.uniform(0, gap), 150, dash + gap)
    cv.polys(_quad_ground(cam, st["center"] - 0.07, st["center"] + 0.07, z, z + dash), None, paint)
    e = np.array([st["edge"][-1] + 0.35, st["edge"][1] - 0.35])
    cv.polys(_quad_ground(cam, e - 0.06, e + 0.06, 0.5, FAR), None, paint)
    if rng.random() < 0.3:  # zebra crossing
        z, x = rng.uniform(8, 30), np.arange(st["edge"][-1], st["edge"][1], 1.0)
        cv.polys(_quad_ground(cam, x, x + 0.5, z, z + 3.0), None, paint)


def _facade(cv, cam, rng, X, z0, z1, height, side):
    """A building segment: facade plane at X between depths z0..z1 with a window grid (colour only)."""
    wallc = jitter(rng, [(190, 180, 160), (160, 90, 70), (200, 200, 195), (120, 120, 125), (210, 190, 140)][
        rng.integers(5)], 15)
    front = cam.project([X, X + side * 20, X + side * 20, X], [0, 0, height, height], z0)
    cv.poly(front, BUILDING, wallc * 0.85)
    cv.poly(_quad_wall(cam, X, 0, height, z0, z1), BUILDING, wallc)
    if cam.scale(z0) < 1.0:
        return
    glass = jitter(rng, (60, 70, 85), 10)
    floor, col, ww = rng.uniform(3.0, 3.6), rng.uniform(2.4, 4.0), rng.uniform(1.0, 1.8)
    y, z = np.meshgrid(np.arange(1.0, height - 1.5, floor), np.arange(z0 + 0.8, z1 - ww, col), indexing="ij")
    if y.size:
        wins = _quad_wall(cam, X - side * 0.01, y, y + np.where(y < 2, 2.2, 1.5), z, z + ww)
        cv.polys(wins.reshape(-1, 4, 2), None, glass)
    cv.poly(_quad_wall(cam, X, height - 0.5, height, z0, z1), None, wallc * 0.7)


def _barrier(cv, cam, rng, X, z0, z1):
    """A wall, or a fence of thin bars / a mesh / planks along the street at X between depths z0..z1."""
    kind = rng.choice(4, p=[0.35, 0.25, 0.2, 0.2])
    if kind == 0:
        h = rng.uniform(0.6, 2.2)
        cv.poly(_quad_wall(cam, X, 0, h, z0, z1), WALL, jitter(rng, (150, 150, 140), 20))
        return
    h = rng.uniform(0.9, 1.8)
    c = jitter(rng, [(60, 62, 60), (120, 90, 60), (160, 160, 165)][rng.integers(3)], 10)
    if kind == 3:  # planks with gaps
        step = rng.uniform(0.15, 0.3)
        z = np.arange(z0, z1, step)
        cv.polys(_quad_wall(cam, X, 0, h, z, z + step * 0.7), FENCE, c)
        return
    step, bw = (rng.uniform(0.12, 0.3), rng.uniform(0.03, 0.06)) if kind == 1 else (0.12, 0.015)
    z = np.arange(z0, z1, step)
    cv.polys(_quad_wall(cam, X, 0, h, z, z + bw), FENCE, c)
    rails = np.array([h - 0.05, 0.1] + ([] if kind == 1 else list(np.arange(0.2, h, 0.12))))
    cv.polys(_quad_wall(cam, X, rails, rails + 0.04, z0, z1), FENCE, c)


def _side(cv, cam, st, side, rng):
    """Buildings (with gaps), walls / fences / hedges along the sidewalk, or a park with a tree line."""
    line = st["edge"][side] + side * (st["sidewalk"][side] + st["terrain"][side])
    if st["kind"][side] == "park":
        X, z = line + side * rng.uniform(8, 25), np.linspace(150, rng.uniform(10, 40), 30)
        top = cam.project(X, rng.uniform(6, 14) + np.cumsum(rng.normal(0, 0.8, z.size)).clip(-4, 4), z)
        cv.poly(np.concatenate([top, cam.project(X, 0, z[::-1])]), VEG, jitter(rng, (60, 95, 40), 15))
    else:
        segs, z = [], rng.uniform(-2, 2)
        while z < 200:
            L = rng.uniform(8, 30)
            if rng.random() > 0.12:
                segs.append((z, z + L))
            z += L
        for z0, z1 in reversed(segs):
            X = line + side * rng.uniform(0.2, 1.5)
            _facade(cv, cam, rng, X, max(z0, 0.5), z1, rng.uniform(7, 26), side)
    z = rng.uniform(0.5, 10)
    while z < 120:  # barriers along the outer sidewalk edge
        L = rng.uniform(5, 30)
        if rng.random() < 0.75:
            _barrier(cv, cam, rng, line - side * 0.1, z, z + L)
        elif rng.random() < 0.15:  # hedge
            h = rng.uniform(0.6, 1.4)
            cv.poly(_quad_wall(cam, line - side * 0.3, 0, h, z, z + L), VEG,
                    jitter(rng, (60, 100, 40), 15))
        z += L + rng.uniform(2, 20)


def _street_items(cam, st, rng, style: SceneStyle):
    """(depth, draw(canvas)) for poles, lights, signs, trees, people, riders, two-wheelers and vehicles.

    Placement is sampled here; each draw samples its own look when called (in depth order).
    """
    d = style.density
    items = []

    def add(z, fn, **kw):
        items.append((z, partial(fn, cam=cam, rng=rng, Z=z, **kw)))

    grey = jitter(rng, (125, 127, 130), 15)
    for side in (-1, 1):
        edge, sw, tw = st["edge"][side], st["sidewalk"][side], st["terrain"][side]
        spacing = rng.uniform(12, 30) / d
        for z in np.arange(rng.uniform(3, spacing), 150, spacing):  # street lamps with an arm over the road
            add(z, _lamp, X=edge + side * 0.5, color=grey, arm=-side * rng.uniform(0, 1.8))
        for z in rng.uniform(4, 45, rng.integers(1, 1 + round(4 * d))):
            add(z, draw_sign, X=edge + side * rng.uniform(0.3, 0.8), height=rng.uniform(2.2, 3.2))
        if tw > 0 or rng.random() < 0.5:
            x = edge + side * (sw + tw / 2 if tw else sw - 0.8)
            for z in np.arange(rng.uniform(4, 12), 100, rng.uniform(8, 20) / d):
                add(z, draw_tree, X=x, clumps=style.leaf_clumps)
        for z in rng.uniform(4, 35, rng.poisson(7 * d)):
            add(z, draw_person, X=edge + side * rng.uniform(0.4, sw))
        for z in rng.uniform(4, 25, rng.poisson(2.0 * d)):  # parked two-wheelers
            fn = draw_motorcycle if rng.random() < 0.25 else draw_bicycle
            add(z, fn, X=edge + side * rng.uniform(0.3, sw), sx=rng.uniform(0.4, 1.0))
    if rng.random() < 0.85:  # traffic lights at a junction
        zj = rng.uniform(8, 35)
        for side in (-1, 1):
            arm = -side * rng.uniform(0, 4) if rng.random() < 0.5 else 0.0
            X = st["edge"][side] + side * 0.4
            add(zj, _signal, X=X, color=grey, arm=arm, height=rng.uniform(3.5, 5.5))
    for _ in range(rng.poisson(2.5 * d)):  # riders on the road
        z, side = rng.uniform(5, 30), rng.choice([-1, 1])
        add(z, draw_rider, X=st["edge"][side] - side * rng.uniform(0.6, 1.5), motor=rng.random() < 0.35)
    for side in (-1, 1):  # parked cars along the curb
        if rng.random() < 0.6:
            for z in np.arange(rng.uniform(3, 8), 60, rng.uniform(5, 7)):
                if rng.random() < 0.7:
                    add(z, draw_vehicle, X=st["edge"][side] - side * 1.15, kind="car")
    for _ in range(rng.poisson(2.0)):  # traffic in two lanes; the left lane comes towards the camera
        kind = rng.choice(["car", "truck", "bus"], p=[0.8, 0.1, 0.1])
        lane = rng.integers(2)
        add(rng.uniform(6, 60), draw_vehicle, X=st["center"] + (1.8 if lane else -1.8) + rng.normal(0, 0.2),
            kind=kind, facing_us=lane == 0)
    if rng.random() < 0.12:
        add(rng.uniform(10, 40), draw_vehicle, X=st["center"], kind="train", facing_us=rng.random() < 0.5)
    return items


def _lamp(cv, cam, rng, X, Z, color, arm):
    draw_pole(cv, cam, rng, X, Z, rng.uniform(6, 9), rng.uniform(0.07, 0.14), color, arm=arm)


def _signal(cv, cam, rng, X, Z, color, arm, height):
    """Traffic-light pole: a light on the pole, or one on the arm over the road plus one on the pole."""
    s = draw_pole(cv, cam, rng, X, Z, height, rng.uniform(0.07, 0.12), color, arm=arm)
    draw_traffic_light(s, rng, arm, height - 0.55 if arm else height - 1.2)
    if arm:
        draw_traffic_light(s, rng, 0.0, 2.6)


def _camera_effects(image, label, rng):
    """Per-class texture, shading, exposure, white balance, vignetting, blur and sensor noise -> uint8."""
    H, W = label.shape
    fine = rng.standard_normal((H, W), dtype=np.float32)
    low = cv2.resize(rng.standard_normal((H // 16 + 1, W // 16 + 1), dtype=np.float32), (W, H),
                     interpolation=cv2.INTER_CUBIC)
    tex = _TEXTURE[label]
    yy, xx = np.ogrid[0:H, 0:W]
    r2 = (((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2).astype(np.float32)
    shading = (1 + tex[..., 1] * low) * (1 - rng.uniform(0.05, 0.25) * r2 / 2)
    gain = (rng.uniform(0.8, 1.15) * (1 + rng.normal(0, 0.04, 3))).astype(np.float32)
    image = (image * shading[..., None] + (tex[..., 0] * fine)[..., None]) * gain
    sigma = rng.uniform(0.0, 0.7)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(rng.uniform(1.0, 3.5))
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _annotation_error(label: np.ndarray, rng, rms: float, correlation: float) -> np.ndarray:
    """``label`` resampled (nearest) through a smooth random displacement of ``rms`` pixels per axis whose
    features are about ``correlation`` pixels apart: boundaries move, thin objects bend, none appear."""
    H, W = label.shape
    grid = (int(H // correlation) + 2, int(W // correlation) + 2)
    shift = []
    for _ in range(2):
        f = cv2.resize(rng.standard_normal(grid, dtype=np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
        shift.append(f * np.float32(rms / max(float(f.std()), 1e-6)))
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    return cv2.remap(label, xs + shift[0], ys + shift[1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def render_scene(rng: np.random.Generator, height: int = 256, width: int = 512, ss: int = 4,
                 style: str = "clean"):
    """One street scene -> (image uint8 (H, W, 3) RGB, label uint8 (H, W) train ids / 255).

    ``style`` names an entry of ``SCENE_STYLES``; for one ``rng`` seed both share camera and street layout.
    """
    look = scene_style(style)
    f = width * rng.uniform(1.6, 2.2)  # a longish lens: street objects large, poles still thin
    cam = Camera(f, cx=width * rng.uniform(0.4, 0.6), horizon=height * rng.uniform(0.36, 0.5),
                 h=rng.uniform(1.3, 1.8))
    left, right = -rng.uniform(3.0, 6.5), rng.uniform(3.0, 6.5)
    st = {"edge": {-1: left, 1: right}, "center": (left + right) / 2 + rng.normal(0, 0.3),
          "sidewalk": {s: rng.uniform(2.0, 6.0) for s in (-1, 1)},
          "terrain": {s: (rng.uniform(1, 4) if rng.random() < 0.4 else 0.0) for s in (-1, 1)},
          "kind": {s: "park" if rng.random() < 0.2 else "buildings" for s in (-1, 1)}}
    cv = Canvas(height, width, ss)
    _sky(cv, cam, rng)
    _ground(cv, cam, st, rng)
    for side in (-1, 1):
        _side(cv, cam, st, side, rng)
    for _, draw in sorted(_street_items(cam, st, rng, look), key=lambda t: -t[0]):
        draw(cv)
    if rng.random() < 0.5:  # ego-vehicle hood: ignore, as in Cityscapes
        hh = rng.uniform(0.04, 0.1) * height
        cv.ellipse((width / 2, height + height * 0.3), (width * 0.8, height * 0.3 + hh), IGNORE,
                   jitter(rng, (40, 42, 48), 10))
    image, label = cv.finish()
    image = _camera_effects(image, label, rng)  # textures follow the true classes, not the annotation
    if look.label_shift_px > 0:
        label = block_majority(_annotation_error(cv.label, rng, look.label_shift_px * ss, 16.0 * ss), ss)
    return image, label
