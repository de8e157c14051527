"""Whether this server runs on the YakYak OS image: the check that updates and the SSH
switch make before changing anything, and the 503 answer they give off the image.

Its own module because both `system_pages` and `ssh_pages` need it, and the System page
imports the SSH section: kept in either, the two modules would import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import bottle

from appliance.web.services import WebServices

NOT_IMAGE_ANSWER: Final = "Not the YakYak OS image: nothing here can install or switch it"
NOT_ON_IMAGE: Final = "only on the YakYak OS image: this machine has no A/B slots (RAUC)"


def on_image(services: WebServices, what: str) -> Path:
    """The data folder root's units read, or 503: `what` ("SSH is switched") cannot
    happen here."""
    if not services.updates_available:
        raise bottle.HTTPError(503, f"{what} {NOT_ON_IMAGE}")
    if services.data_dir is None:
        raise bottle.HTTPError(503, f"{what}: this server has no data folder")
    return services.data_dir
