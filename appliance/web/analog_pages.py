"""The analog ports page (`/analog`): each FXS/FXO port of the board as the running
PBX sees it (its role, its line machine's state, whether its extension registered)
and whether the line controller answers.

Only live data: the board's definition (board/NAME.toml) is not reachable from the
web services, so the port settings are not shown here. Ports get a role from
yakyak.toml's [board] fxs_extensions and fxo_inbound; the page says so.
"""

from __future__ import annotations

import html

from appliance.web.dashboard import look, ports_block, status_text
from appliance.web.events import EVENTS_PATH, SCRIPT_PATH
from appliance.web.pages import page
from appliance.web.registry import Registry
from appliance.web.services import WebServices

HELP = """<p>A port with the role "not set" is not used. Say which extension each FXS
port is, and which number a ringing FXO line calls, in <code>yakyak.toml</code>:</p>
<pre><code>[board]
fxs_extensions = { "1" = "201", "2" = "202" }
fxo_inbound = { "3" = "500" }</code></pre>
<p>then restart YakYak. The extensions must exist first.</p>"""


def register_analog_pages(reg: Registry, services: WebServices) -> None:
    @reg.add("GET", "/analog", "system:read", "Analog ports", nav="Analog ports", nav_order=40)
    def analog() -> str:
        snapshot, reason = look(services.live)
        e = html.escape
        body = "\n".join(
            [
                f'<section id="live" data-events="{e(EVENTS_PATH)}">',
                f'<p id="live-status">{e(status_text(snapshot, reason))}</p>',
                ports_block(snapshot),
                "</section>",
                f'<script src="{e(SCRIPT_PATH)}" defer></script>',
                HELP,
            ]
        )
        return page("Analog ports", body)
