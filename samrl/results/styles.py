"""One colour per optimizer choice, the same in every figure: which networks SAM steps decides
the colour (Okabe-Ito, colour-blind safe); Adam (SAM on no network) is black. Radii, where a
figure compares them, get a sequential palette of their own (RHO_COLOURS)."""

from __future__ import annotations

from collections.abc import Iterable

ADAM_COLOUR = "black"
#: SAM network set (sorted names joined by "+") -> colour.
NETWORK_COLOURS = {
    "": ADAM_COLOUR,
    "actor": "#0072B2",  # blue
    "critic": "#D55E00",  # vermillion
    "actor+critic": "#009E73",  # bluish green
    "imitator": "#CC79A7",  # reddish purple
    "actor+critic+imitator": "#E69F00",  # orange
    "actor+imitator": "#56B4E9",  # sky blue
    "critic+imitator": "#8C564B",  # brown
}
OTHER_COLOUR = "#7F7F7F"  # grey: a network set not in the table (e.g. a single-network algo)
#: Sequential colours for up to four radii, small to large (viridis samples, no yellow).
RHO_COLOURS = ("#440154", "#31688E", "#35B779", "#90D743")


def network_key(networks: Iterable[str]) -> str:
    return "+".join(sorted(set(networks)))


def network_colour(networks: Iterable[str]) -> str:
    """The colour of SAM on these networks (black for none)."""
    return NETWORK_COLOURS.get(network_key(networks), OTHER_COLOUR)


def network_label(networks: Iterable[str]) -> str:
    nets = sorted(set(networks))
    return "Adam" if not nets else "SAM on " + " + ".join(nets)


def rho_colour(index: int) -> str:
    return RHO_COLOURS[index % len(RHO_COLOURS)]
