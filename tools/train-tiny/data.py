"""data.py — the procedural clips the bundled tiny model learns from.

A clip is F frames of S x S pixels: one shape (circle, square, triangle) of a named colour
on a plain background, moving left, right, up or down by a fixed number of pixels per
frame, or standing still; anywhere in the frame, or (centred=True, the DiT's data) on a
path centred in it. Its caption comes from templates:
"a red circle moving to the right on a gray background" (the background phrase is left out
of some captions; the background is then black in the DiT's centred clips, random in the
VAE's). Single frames (F = 1) have captions
without the motion and serve text-to-image.

The same names and colours are what tests/test_tiny.c measures the renders against.
"""
import numpy as np

COLOURS = {  # foreground
    "red": (225, 40, 35),
    "green": (40, 200, 60),
    "blue": (45, 95, 235),
    "yellow": (240, 215, 40),
    "white": (245, 245, 245),
}
BACKGROUNDS = {
    "black": (12, 12, 12),
    "gray": (105, 105, 105),
    "purple": (75, 30, 95),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = {  # pixels per frame (dx, dy) in units of SPEED
    "moving to the left": (-1, 0),
    "moving to the right": (1, 0),
    "moving up": (0, -1),
    "moving down": (0, 1),
    "standing still": (0, 0),
}
DEFAULT_BG = "black"  # the DiT's clips whose caption names no background (the VAE's stay random:
# a tiny DiT left to pick one of three backgrounds from noise paints their blend, a blue haze)
SPEED = 2.0  # pixels per frame at 96 x 96
SQUARE = 0.85  # a square's half-side, a fraction of its size (half-extent)
CENTRED_SIZE = (0.255, 0.255)  # half-extent range of a centred shape, a fraction of the frame:
# larger than the VAE's (0.13-0.19), since at 4 latent pixels across the VAE rounds a
# triangle's corners until its fill ratio reads as a circle's
CENTRED_SQUARE = 1.0  # a centred square's half-side, a fraction of its size: the circle's extent
# (at SQUARE, as in the VAE's clips, the DiT's renders round its corners to a circle's fill ratio)
CENTRED_JITTER = 0.0  # how far (a fraction of the frame) a centred path may sit off centre


def shape_mask(shape, S, cx, cy, r, square=SQUARE):
    """Boolean [S, S] mask of the shape centred at (cx, cy) with size r (half-extent; a square's
    half-side is square * r)."""
    y, x = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 < r * r
    if shape == "square":
        h = r * square
        return (np.abs(x - cx) < h) & (np.abs(y - cy) < h)
    # triangle, apex up: half-width grows linearly from the apex to the base
    top, bot = cy - r, cy + r
    half = r * (y - top) / (bot - top)
    return (y >= top) & (y < bot) & (np.abs(x - cx) < half)


def caption(colour, shape, motion, bg, with_bg, video):
    s = f"a {colour} {shape}"
    if video:
        s += f" {motion}"
    if with_bg:
        s += f" on a {bg} background"
    return s


def sample(rng, S=96, F=17, video=True, centred=False):
    """One clip: (uint8 frames [F, S, S, 3], caption, attributes dict).

    centred=False puts the path anywhere inside the frame (what the VAE learns from);
    centred=True centres it (within CENTRED_JITTER of the frame), with the larger CENTRED_SIZE
    shapes, so the caption (all but) fixes the clip: what the small DiT learns (a caption with many
    equally likely layouts takes a far larger model and budget to sample coherently)."""
    colour = rng.choice(list(COLOURS))
    shape = rng.choice(SHAPES)
    motion = rng.choice(list(MOTIONS)) if video else "standing still"
    bg = rng.choice(list(BACKGROUNDS))
    with_bg = rng.random() < 0.7
    r = rng.uniform(0.13, 0.19) * S
    dx, dy = MOTIONS[motion]
    travel = SPEED * (S / 96.0) * (F - 1)
    # start so that the whole path stays inside the frame
    lo, hi = r + 1, S - r - 1
    x0 = rng.uniform(lo - min(dx, 0) * travel, hi - max(dx, 0) * travel)
    y0 = rng.uniform(lo - min(dy, 0) * travel, hi - max(dy, 0) * travel)
    if centred:  # the same draws above, so the uncentred stream stays as it was
        lo_r, hi_r = CENTRED_SIZE
        r = (lo_r + (hi_r - lo_r) * (r / S - 0.13) / 0.06) * S
        j = CENTRED_JITTER * S
        x0 = S / 2 - dx * travel / 2 + (x0 - (lo + hi) / 2) / (hi - lo) * 2 * j
        y0 = S / 2 - dy * travel / 2 + (y0 - (lo + hi) / 2) / (hi - lo) * 2 * j
        if not with_bg:  # a caption without a background phrase means the default one
            bg = DEFAULT_BG
    frames = np.empty((F, S, S, 3), np.uint8)
    fg, bgc = np.array(COLOURS[colour], np.uint8), np.array(BACKGROUNDS[bg], np.uint8)
    for f in range(F):
        step = SPEED * (S / 96.0) * f
        m = shape_mask(shape, S, x0 + dx * step, y0 + dy * step, r, CENTRED_SQUARE if centred else SQUARE)
        frames[f] = bgc
        frames[f][m] = fg
    attrs = dict(colour=colour, shape=shape, motion=motion, bg=bg)
    return frames, caption(colour, shape, motion, bg, with_bg, video), attrs


def all_captions():
    """Every caption the templates can make (for the tokenizer)."""
    out = []
    for c in COLOURS:
        for s in SHAPES:
            for b in BACKGROUNDS:
                for wb in (False, True):
                    out.append(caption(c, s, None, b, wb, False))
                    for m in MOTIONS:
                        out.append(caption(c, s, m, b, wb, True))
    return sorted(set(out))
