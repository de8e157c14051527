"""The auto-attendant (IVR): menus and schedules (``menu``, ``schedule``) and the call
application that walks a caller through them (``menu_app``)."""

from appliance.pbx.ivr.menu import (
    DEMO_IVR,
    Action,
    IvrConfig,
    IvrError,
    Menu,
    MenuOption,
    parse_ivr,
)
from appliance.pbx.ivr.menu_app import MenuApp, State
from appliance.pbx.ivr.schedule import Holiday, HoursRule, Schedule

__all__ = [
    "DEMO_IVR",
    "Action",
    "Holiday",
    "HoursRule",
    "IvrConfig",
    "IvrError",
    "Menu",
    "MenuApp",
    "MenuOption",
    "Schedule",
    "State",
    "parse_ivr",
]
